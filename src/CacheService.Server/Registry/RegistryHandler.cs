using CacheService.Core;
using CacheService.Core.Access;
using CacheService.Core.Options;
using CacheService.Core.Registry;
using CacheService.Core.Transfers;
using CacheService.Server.Access;
using CacheService.Server.Observability;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Registry;

/// <summary>
/// The OCI Distribution API (distribution-spec v1.1) under <c>/v2/</c> on the HTTP port, so that
/// builders that cache in a registry (buildah and podman <c>--cache-to</c>, kaniko
/// <c>--cache-repo</c>, BuildKit <c>type=registry</c>) use the cache unchanged. A repository is a
/// namespace. This is transport only: storage, counting and repair are the core's
/// (<see cref="OciRegistry"/>, <see cref="LayerTransfers"/>).
/// </summary>
/// <remarks>
/// <para>One handler, one file per resource: routing here; <c>RegistryHandler.Blobs.cs</c>,
/// <c>.Uploads.cs</c>, <c>.Manifests.cs</c>, <c>.Referrers.cs</c>, <c>.Tags.cs</c>; <see cref="ByteRange"/> for
/// <c>Range</c> headers and <see cref="RegistryError"/> for the spec's error bodies.</para>
/// <para>Access: GET and HEAD read the repository, every other method writes it. Without the right
/// credentials the answer is a 401 whose challenge points at <see cref="RegistryTokenEndpoint"/>
/// (Docker's token flow); with credentials that lack the scope, a 403 <c>DENIED</c>. Every PUT,
/// DELETE and completed POST goes to the <see cref="AuditLog"/>.</para>
/// </remarks>
internal sealed partial class RegistryHandler(
    OciRegistry registry,
    LayerTransfers transfers,
    DirectTransfers direct,
    UploadSessions sessions,
    Authenticator authenticator,
    AuditLog audit,
    CacheMetrics metrics,
    IOptions<LimitsOptions> limits,
    IOptions<RegistryOptions> options,
    IOptions<IntegrityOptions> integrity)
{
    private const string ApiVersionHeader = "Docker-Distribution-API-Version";
    private const string DigestHeader = "Docker-Content-Digest";

    public async Task HandleAsync(HttpContext http, string path)
    {
        ArgumentNullException.ThrowIfNull(http);
        http.Response.Headers[ApiVersionHeader] = "registry/2.0";
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // Kestrel's 30 MB default would refuse layers; the cache's own limit applies instead.
            bodyLimit.MaxRequestBodySize = limits.Value.MaxLayerBytes;
        }

        var status = StatusCodes.Status500InternalServerError; // what Kestrel answers for an unexpected failure
        try
        {
            http.Items[typeof(Caller)] = authenticator.Authenticate(http);
            await RouteAsync(http, path);
            status = http.Response.StatusCode;
        }
        catch (Exception e) when (RegistryError.Describe(e) is { } error)
        {
            status = error.Status;
            if (!http.Response.HasStarted)
            {
                // Headers set for a body that never started (a blob's Content-Length) must not describe the error.
                http.Response.Clear();
                http.Response.Headers[ApiVersionHeader] = "registry/2.0";
                http.Response.StatusCode = error.Status;
                if (e is NotAuthenticatedException refused)
                {
                    http.Response.Headers.WWWAuthenticate = RegistryTokenEndpoint.Challenge(http, refused.Needed);
                }
                else if (e is TooManyAttemptsException throttled)
                {
                    http.Response.Headers.RetryAfter = throttled.RetryAfterHeader;
                }

                await http.Response.WriteAsJsonAsync(new { errors = new[] { new { code = error.Code, message = error.Message } } });
            }
        }
        finally
        {
            metrics.RegistryRequest(http.Request.Method, status);
        }
    }

    private async Task RouteAsync(HttpContext http, string path)
    {
        var caller = http.Caller();
        var method = http.Request.Method;
        if (path.Length == 0)
        {
            // The version check: clients learn here whether, and where, to authenticate.
            caller.RequireAnyScope();
            await http.Response.WriteAsJsonAsync(new { });
            return;
        }

        if (path == "_catalog" && HttpMethods.IsGet(method))
        {
            await CatalogAsync(http, caller);
            return;
        }

        var (ns, target, handle) = Route(http, path);
        var writes = !HttpMethods.IsGet(method) && !HttpMethods.IsHead(method);
        caller.Require(writes ? AccessLevel.Write : AccessLevel.Read, ns);
        await handle();
        if (writes && !HttpMethods.IsPatch(method) && http.Response.StatusCode is >= 200 and < 300)
        {
            audit.Written(http, $"registry {method}", ns, target, http.Response.Headers[DigestHeader].ToString() is { Length: > 0 } digest ? digest : null);
        }
    }

    // The repository a request is about, the rest of its path, and what answers it.
    private (string Ns, string Target, Func<Task> Handle) Route(HttpContext http, string path)
    {
        var method = http.Request.Method;
        if (Split(path, "/blobs/uploads") is { } uploads)
        {
            var id = uploads.Tail.Trim('/');
            return (uploads.Ns, "blobs/uploads", id.Length == 0 && method == "POST" ? () => StartUploadAsync(http, uploads.Ns)
                : id.Length > 0 ? () => UploadAsync(http, uploads.Ns, id)
                : () => Unsupported(http));
        }

        if (Split(path, "/blobs/") is { } blob)
        {
            var digest = Digest.Parse(blob.Tail, "digest");
            return (blob.Ns, digest.Value, () => BlobAsync(http, blob.Ns, digest));
        }

        if (Split(path, "/manifests/") is { } manifest)
        {
            return (manifest.Ns, manifest.Tail, () => ManifestAsync(http, manifest.Ns, manifest.Tail));
        }

        if (Split(path, "/referrers/") is { } referrers)
        {
            var subject = Digest.Parse(referrers.Tail, "digest");
            return (referrers.Ns, "referrers", () => ReferrersAsync(http, referrers.Ns, subject));
        }

        if (Split(path, "/tags/list") is { Tail: "" } tags && method == "GET")
        {
            return (tags.Ns, "tags", () => TagsAsync(http, tags.Ns));
        }

        throw new RegistryError(404, "NOT_FOUND", $"no route for {method} /v2/{path}");
    }

    // "team/app/blobs/sha256:..." -> ("team/app", "sha256:..."); the repository name may hold slashes.
    private static (string Ns, string Tail)? Split(string path, string marker)
    {
        var at = path.LastIndexOf(marker, StringComparison.Ordinal);
        return at <= 0 ? null : (NamespaceName.Validate(path[..at], "name"), path[(at + marker.Length)..]);
    }

    private static Task Unsupported(HttpContext http) =>
        throw new RegistryError(405, "UNSUPPORTED", $"{http.Request.Method} is not supported here");
}

/// <summary>Maps <c>/v2/</c> to the <see cref="RegistryHandler"/>.</summary>
internal static class RegistryEndpoints
{
    public static void MapRegistryEndpoints(this WebApplication app)
    {
        // The handler comes from DI per request (a singleton), so options are validated at start, all at once, not here.
        app.Map("/v2/{**path}", (HttpContext http, string? path, RegistryHandler handler) => handler.HandleAsync(http, path ?? ""));
    }
}
