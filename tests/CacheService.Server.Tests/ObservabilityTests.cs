using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using CacheService.Api.V1;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Tests;

/// <summary>/metrics, the status data, liveness and readiness of the real server in process.</summary>
public sealed partial class ObservabilityTests : IDisposable
{
    private readonly HttpClient _http = new();

    public void Dispose() => _http.Dispose();

    private Task<string> GetAsync(TestServer server, string path) => _http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}{path}");

    // 3 hits and 1 miss in "obs/main", one ResolveChain of a hit and a miss, one upload and one download.
    private static async Task<LayerDescriptor> KnownSequenceAsync(TestServer server)
    {
        var layer = await Layers.UploadAndCommitAsync(server.Client, "obs/main", "k", Layers.Random(1000, 1));
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "obs/main", Key = Layers.Key("k") })).Hit);
        }

        Assert.False((await server.Client.LookupAsync(new LookupRequest { Namespace = "obs/main", Key = Layers.Key("absent") })).Hit);
        await Layers.DownloadAsync(server.Client, "obs/main", layer.Digest);
        return layer;
    }

    private static double Sample(string metrics, string series)
    {
        var line = metrics.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            ?? throw new Xunit.Sdk.XunitException($"no series {series} in:\n{metrics}");
        return double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Metrics_count_lookups_by_namespace_and_result_bytes_and_calls()
    {
        await using var server = await TestServer.StartAsync();
        await KnownSequenceAsync(server);
        var metrics = await GetAsync(server, "/metrics");
        Assert.Equal(3, Sample(metrics, "cacheservice_lookups_total{namespace=\"obs/main\",result=\"hit\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_lookups_total{namespace=\"obs/main\",result=\"miss\"}"));
        Assert.Equal(1000, Sample(metrics, "cacheservice_layer_bytes_total{direction=\"upload\"}"));
        Assert.Equal(1000, Sample(metrics, "cacheservice_layer_bytes_total{direction=\"download\"}"));
        Assert.Equal(4, Sample(metrics, "cacheservice_rpc_duration_seconds_count{method=\"Lookup\",code=\"OK\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_rpc_duration_seconds_count{method=\"Commit\",code=\"OK\"}"));

        await Assert.ThrowsAsync<RpcException>(async () => await server.Client.LookupAsync(new LookupRequest { Namespace = "Bad Name", Key = Layers.Key("k") }));
        metrics = await GetAsync(server, "/metrics");
        Assert.Equal(1, Sample(metrics, "cacheservice_rpc_duration_seconds_count{method=\"Lookup\",code=\"InvalidArgument\"}"));
    }

    [Fact]
    public async Task ResolveChain_steps_count_by_result_and_their_layer_lookups_count_as_lookups()
    {
        await using var server = await TestServer.StartAsync();
        var baseState = Layers.Key("base");
        var request = new ResolveChainRequest { Namespace = "obs/chain", BaseState = baseState, Platform = "linux/amd64" };
        request.Steps.Add(new StepInput { Instruction = "ENV A=1" });
        request.Steps.Add(new StepInput { Instruction = "RUN make" });
        request.Steps.Add(new StepInput { Instruction = "RUN make install" });
        await server.Client.ResolveChainAsync(request);
        var metrics = await GetAsync(server, "/metrics");
        Assert.Equal(1, Sample(metrics, "cacheservice_resolve_chain_steps_total{result=\"config\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_resolve_chain_steps_total{result=\"miss\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_resolve_chain_steps_total{result=\"pending\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_lookups_total{namespace=\"obs/chain\",result=\"miss\"}"));
    }

    [Fact]
    public async Task Namespace_labels_are_capped_and_the_rest_fold_into_other()
    {
        await using var server = await TestServer.StartAsync("--CacheService:Observability:MaxNamespaceLabels=2");
        await server.RunPeriodicWorkAsync("namespace sample", 1, TimeSpan.FromSeconds(1)); // the first ranking (of an empty index) is done
        foreach (var ns in (string[])["pr/1", "pr/2", "pr/3", "pr/4"])
        {
            await server.Client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("k") });
        }

        var metrics = await GetAsync(server, "/metrics");
        Assert.Equal(1, Sample(metrics, "cacheservice_lookups_total{namespace=\"pr/1\",result=\"miss\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_lookups_total{namespace=\"pr/2\",result=\"miss\"}"));
        Assert.Equal(2, Sample(metrics, "cacheservice_lookups_total{namespace=\"other\",result=\"miss\"}"));
        Assert.DoesNotContain("pr/3", metrics, StringComparison.Ordinal);
    }

    // Issue 13, finding 16: lookups of made-up names must not take the labels of namespaces that hold data.
    [Fact]
    public async Task Lookups_of_made_up_namespaces_lose_their_labels_to_namespaces_that_hold_data_at_the_next_sample()
    {
        await using var server = await TestServer.StartAsync("--CacheService:Observability:MaxNamespaceLabels=1");
        const string Sampler = "namespace sample";
        await server.RunPeriodicWorkAsync(Sampler, 1, TimeSpan.FromSeconds(1));
        foreach (var ns in (string[])["junk/1", "junk/2", "junk/3"])
        {
            await server.Client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("k") });
        }

        await Layers.UploadAndCommitAsync(server.Client, "team/main", "k", Layers.Random(100, 1));
        await server.RunPeriodicWorkAsync(Sampler, server.Rounds(Sampler) + 1, TimeSpan.FromSeconds(1));
        await server.Client.LookupAsync(new LookupRequest { Namespace = "team/main", Key = Layers.Key("k") });

        var metrics = await GetAsync(server, "/metrics");
        Assert.Equal(1, Sample(metrics, "cacheservice_lookups_total{namespace=\"team/main\",result=\"hit\"}"));
        Assert.DoesNotContain("junk/", metrics, StringComparison.Ordinal);
    }

    // Issue 13, finding 17: the log must not carry lines per request at Information.
    [Fact]
    public async Task Blob_calls_log_nothing_per_request_at_information()
    {
        var logs = new CapturedLogs(LogLevel.Information);
        await using var server = await TestServer.StartAsync(services => services.AddSingleton<ILoggerProvider>(logs), "--Logging:LogLevel:Default=Information");
        await KnownSequenceAsync(server);
        Assert.DoesNotContain(logs.Entries, e => e.Level < LogLevel.Warning && e.Category.StartsWith("Polly", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.EventId == 1); // Information does reach the log: the start line is there
    }

    [Fact]
    public async Task Promtool_accepts_the_metrics_output()
    {
        await using var server = await TestServer.StartAsync();
        await KnownSequenceAsync(server);
        server.Time.Advance(TimeSpan.FromSeconds(10)); // a sample, so the gauges have series too
        var metrics = await WaitForAsync(server, "/metrics", m => m.Contains("cacheservice_entries{namespace=\"obs/main\"} 1", StringComparison.Ordinal));
        var (exit, output, error) = await Tools.RunAsync("promtool", "prometheus", metrics, "check", "metrics");
        Assert.True(exit == 0, output + error);
        Assert.Equal(1000, Sample(metrics, "cacheservice_stored_bytes{namespace=\"obs/main\"}"));
    }

    [Fact]
    public async Task Status_data_gives_each_sampling_intervals_hit_ratio_per_namespace()
    {
        await using var server = await TestServer.StartAsync();
        await KnownSequenceAsync(server);
        server.Time.Advance(TimeSpan.FromSeconds(10));
        var json = await WaitForAsync(server, "/api/status", s => s.Contains("obs/main", StringComparison.Ordinal));
        var ns = JsonDocument.Parse(json).RootElement.GetProperty("namespaces").EnumerateArray().Single(n => n.GetProperty("namespace").GetString() == "obs/main");
        Assert.Equal((4, 3, 1), (ns.GetProperty("lookups").GetInt64(), ns.GetProperty("hits").GetInt64(), ns.GetProperty("entries").GetInt64()));
        Assert.Equal(0.75, ns.GetProperty("history").EnumerateArray().Last().GetProperty("hitRatio").GetDouble());

        await server.Client.LookupAsync(new LookupRequest { Namespace = "obs/main", Key = Layers.Key("absent") });
        server.Time.Advance(TimeSpan.FromSeconds(10));
        json = await WaitForAsync(server, "/api/status", s => JsonDocument.Parse(s).RootElement.GetProperty("namespaces")[0].GetProperty("history").GetArrayLength() == 2);
        var history = JsonDocument.Parse(json).RootElement.GetProperty("namespaces")[0].GetProperty("history");
        Assert.Equal(0.0, history[1].GetProperty("hitRatio").GetDouble()); // the last interval: 1 lookup, a miss
        Assert.Equal(1, history[1].GetProperty("lookups").GetInt64());

        var page = await GetAsync(server, "/");
        Assert.Contains("<svg id=\"chart\"", page, StringComparison.Ordinal);
        Assert.DoesNotMatch(ExternalResource(), page); // self-contained: no CDN
    }

    [Fact]
    public async Task Liveness_answers_while_readiness_follows_the_index()
    {
        TroubledIndex index = null!;
        await using var server = await TestServer.StartAsync(services => services.AddSingleton<ILayerIndex>(sp =>
            index = new TroubledIndex(new SqliteLayerIndex(
                Path.Combine(sp.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory, "index.db"), TimeProvider.System))));
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"http://127.0.0.1:{server.HttpPort}/readyz")).StatusCode);

        index.Down = true;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await _http.GetAsync($"http://127.0.0.1:{server.HttpPort}/readyz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"http://127.0.0.1:{server.HttpPort}/healthz")).StatusCode);
        var health = new Grpc.Health.V1.Health.HealthClient(server.Channel);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = "liveness" })).Status);

        await server.Client.LookupAsync(new LookupRequest { Namespace = "obs/down", Key = Layers.Key("k") });
        var metrics = await GetAsync(server, "/metrics");
        Assert.Equal(1, Sample(metrics, "cacheservice_lookups_total{namespace=\"obs/down\",result=\"degraded\"}"));
        Assert.Equal(1, Sample(metrics, "cacheservice_backend_errors_total{backend=\"index\"}"));

        index.Down = false;
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync($"http://127.0.0.1:{server.HttpPort}/readyz")).StatusCode);
    }

    // The sampler runs on its own after the clock moves; wait (bounded) for its result.
    private async Task<string> WaitForAsync(TestServer server, string path, Func<string, bool> ready)
    {
        var body = "";
        for (var attempt = 0; attempt < 100; attempt++)
        {
            body = await GetAsync(server, path);
            if (ready(body))
            {
                return body;
            }

            await Task.Delay(50);
        }

        throw new Xunit.Sdk.XunitException($"{path} never got ready:\n{body}");
    }

    [GeneratedRegex(@"(src|href)\s*=\s*""(https?:)?//", RegexOptions.IgnoreCase)]
    private static partial Regex ExternalResource();
}
