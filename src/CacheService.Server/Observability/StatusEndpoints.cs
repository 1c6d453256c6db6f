using System.Text.Json;
using CacheService.Core;
using CacheService.Core.Access;
using CacheService.Server.Access;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Prometheus;

namespace CacheService.Server.Observability;

/// <summary>
/// What people and monitors read over HTTP/1.1: <c>/metrics</c> (Prometheus), <c>/</c> (the
/// status page), <c>/api/status</c> (its data), <c>/healthz</c> (liveness: the process answers)
/// and <c>/readyz</c> (readiness: the index and the blob store answer). Metrics and health stay
/// open (scrapers and probes carry no tokens); the status page and its data need credentials with
/// some scope (a browser asks for them: the secret as the password) unless
/// <see cref="AuthOptions.OpenStatusPage"/>, and the data shows only the namespaces they may read.
/// </summary>
internal static class StatusEndpoints
{
    /// <summary>Health checks with this tag decide readiness (and the gRPC health service).</summary>
    public const string ReadinessTag = "ready";

    /// <summary>Health checks with this tag decide liveness: the process answers.</summary>
    public const string LivenessTag = "live";

    /// <summary>The gRPC health service name that answers liveness.</summary>
    public const string LivenessService = "liveness";

    private static readonly Lazy<string> Page = new(() =>
    {
        using var stream = typeof(StatusEndpoints).Assembly.GetManifestResourceStream("CacheService.Server.Observability.status.html")
            ?? throw new InvalidOperationException("status.html is not embedded");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    public static void MapStatusEndpoints(this WebApplication app)
    {
        app.MapMetrics("/metrics", app.Services.GetRequiredService<CacheMetrics>().Registry);
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = check => check.Tags.Contains(LivenessTag) });
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadinessTag) });
        app.MapGet("/", () => Results.Content(Page.Value, "text/html; charset=utf-8")).AddEndpointFilter(RequireReader);
        app.MapGet("/api/status", (HttpContext http, NamespaceSampler sampler, IOptions<ObservabilityOptions> options, TimeProvider time) =>
            {
                var caller = http.Items[typeof(Caller)] as Caller; // null: the page is open to all
                var visible = sampler.History().Where(h => caller is null || caller.Allows(AccessLevel.Read, h.Key)).ToDictionary();
                return Results.Text(StatusJson(visible, options.Value, time.GetUtcNow()), "application/json");
            })
            .AddEndpointFilter(RequireReader);
    }

    private static async ValueTask<object?> RequireReader(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (http.RequestServices.GetRequiredService<IOptions<AuthOptions>>().Value.OpenStatusPage)
        {
            return await next(context);
        }

        try
        {
            var caller = http.RequestServices.GetRequiredService<Authenticator>().Authenticate(http);
            caller.RequireAnyScope();
            http.Items[typeof(Caller)] = caller;
        }
        catch (NotAuthenticatedException e)
        {
            http.Response.Headers.WWWAuthenticate = "Basic realm=\"cacheservice\"";
            return Results.Text(e.Message, statusCode: StatusCodes.Status401Unauthorized);
        }
        catch (TooManyAttemptsException e)
        {
            http.Response.Headers.RetryAfter = e.RetryAfterHeader;
            return Results.Text(e.Message, statusCode: StatusCodes.Status429TooManyRequests);
        }

        return await next(context);
    }

    // Per namespace: the latest counters, and the hit ratio of each sampling interval (null
    // where nothing was looked up), which shows a change in hit rate at once where a running
    // total would hide it.
    private static string StatusJson(IReadOnlyDictionary<string, IReadOnlyList<NamespaceSample>> history, ObservabilityOptions options, DateTimeOffset now)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("generatedAt", now.ToUnixTimeMilliseconds());
            json.WriteNumber("sampleIntervalSeconds", options.SampleInterval.TotalSeconds);
            json.WriteStartArray("namespaces");
            foreach (var (ns, samples) in history.OrderBy(h => h.Key, StringComparer.Ordinal))
            {
                var last = samples[^1].Usage;
                json.WriteStartObject();
                json.WriteString("namespace", ns);
                json.WriteNumber("lookups", last.Lookups);
                json.WriteNumber("hits", last.Hits);
                json.WriteNumber("hitRatio", last.HitRatio);
                json.WriteNumber("entries", last.Entries);
                json.WriteNumber("storedBytes", last.StoredBytes);
                json.WriteNumber("evictions", last.Evictions);
                json.WriteStartArray("history");
                for (var i = 0; i < samples.Count; i++)
                {
                    var lookups = samples[i].Usage.Lookups - (i > 0 ? samples[i - 1].Usage.Lookups : 0);
                    var hits = samples[i].Usage.Hits - (i > 0 ? samples[i - 1].Usage.Hits : 0);
                    json.WriteStartObject();
                    json.WriteNumber("t", samples[i].At.ToUnixTimeMilliseconds());
                    json.WriteNumber("lookups", lookups);
                    if (lookups > 0)
                    {
                        json.WriteNumber("hitRatio", (double)hits / lookups);
                    }
                    else
                    {
                        json.WriteNull("hitRatio");
                    }

                    json.WriteEndObject();
                }

                json.WriteEndArray();
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
