using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using CacheService.Api.V1;
using CacheService.Blobs.FileSystem;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Tests;

/// <summary>
/// The same traffic over gRPC and over the registry API (<c>/v2/</c>) moves the same counters,
/// in the Prometheus metrics and in the namespace's stats: both transports go through the core,
/// which counts where each fact is known.
/// </summary>
public sealed class TransportParityTests : IAsyncLifetime, IDisposable
{
    private readonly HttpClient _http = new();
    private TroubledIndex _index = null!;
    private BreakingReads _blobs = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(
            services =>
            {
                services.AddSingleton<ILayerIndex>(sp => _index = new TroubledIndex(new SqliteLayerIndex(
                    Path.Combine(DataDirectory(sp), "index.db"), TimeProvider.System)));
                services.AddSingleton<IBlobStore>(sp => _blobs = new BreakingReads(new FileSystemBlobStore(Path.Combine(DataDirectory(sp), "blobs"))));
            },
            "--CacheService:Eviction:NamespaceBudgetBytes:parity/grpc-small=5000",
            "--CacheService:Eviction:NamespaceBudgetBytes:parity/oci-small=5000");
        _http.BaseAddress = new Uri($"http://127.0.0.1:{_server.HttpPort}");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task Uploads_whole_downloads_and_ranged_downloads_count_the_same_bytes()
    {
        var data = Layers.Random(10_000, 7);
        var grpc = await MeasureBytesAsync("parity/grpc", async () =>
        {
            await Layers.UploadAsync(_server.Client, "parity/grpc", data);
            Assert.Equal(data, await Layers.DownloadAsync(_server.Client, "parity/grpc", Layers.DigestOf(data)));
            Assert.Equal(data[4000..], await Layers.DownloadAsync(_server.Client, "parity/grpc", Layers.DigestOf(data), offset: 4000));
        });
        var oci = await MeasureBytesAsync("parity/oci", async () =>
        {
            await _http.PushBlobAsync("parity/oci", data);
            Assert.Equal(data, await _http.GetByteArrayAsync($"/v2/parity/oci/blobs/{Layers.DigestOf(data)}"));
            using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/v2/parity/oci/blobs/{Layers.DigestOf(data)}");
            ranged.Headers.Range = new RangeHeaderValue(4000, null);
            using var response = await _http.SendAsync(ranged);
            Assert.Equal(HttpStatusCode.PartialContent, response.StatusCode);
            Assert.Equal(data[4000..], await response.Content.ReadAsByteArrayAsync());
        });

        Assert.Equal((10_000, 16_000, 10_000, 16_000), grpc);
        Assert.Equal(grpc, oci);
    }

    [Fact]
    public async Task Lookups_count_hits_misses_and_degraded_misses_the_same()
    {
        var grpc = await MeasureLookupsAsync("parity/grpc-lookups", async () =>
        {
            await Layers.UploadAndCommitAsync(_server.Client, "parity/grpc-lookups", "k", Layers.Random(100, 1));
            Assert.True((await Lookup("parity/grpc-lookups", "k")).Hit);
            Assert.False((await Lookup("parity/grpc-lookups", "absent")).Hit);
            _index.Down = true;
            Assert.True((await Lookup("parity/grpc-lookups", "k")).Degraded);
            _index.Down = false;
        });
        var oci = await MeasureLookupsAsync("parity/oci-lookups", async () =>
        {
            await _http.PushImageAsync("parity/oci-lookups", "k", seed: 1);
            Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/v2/parity/oci-lookups/manifests/k")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/parity/oci-lookups/manifests/absent")).StatusCode);
            _index.Down = true;
            Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/parity/oci-lookups/manifests/k")).StatusCode); // a miss, not an error
            _index.Down = false;
        });

        Assert.Equal((1, 1, 1, 1, 2, 1), grpc);
        Assert.Equal(grpc, oci);
    }

    [Fact]
    public async Task Evictions_reach_the_metric_and_the_stats_alike()
    {
        var grpc = await MeasureEvictionsAsync("parity/grpc-small", async () =>
        {
            for (var i = 0; i < 4; i++)
            {
                await Layers.UploadAndCommitAsync(_server.Client, "parity/grpc-small", $"k{i}", Layers.Random(2000, i));
            }
        });
        var oci = await MeasureEvictionsAsync("parity/oci-small", async () =>
        {
            for (var i = 0; i < 4; i++)
            {
                await _http.PushImageAsync("parity/oci-small", $"t{i}", seed: i, layerBytes: 2000);
            }
        });

        Assert.True(grpc.Metric > 0, "the gRPC commits should have evicted");
        Assert.Equal(grpc.Stats, grpc.Metric);
        Assert.True(oci.Metric > 0, "the manifest pushes should have evicted");
        Assert.Equal(oci.Stats, oci.Metric);
    }

    [Fact]
    public async Task A_store_that_fails_in_the_middle_of_a_download_is_counted_once_either_way()
    {
        var data = Layers.Random(2_000_000, 9); // several chunks: the failure comes after bytes went out
        await Layers.UploadAsync(_server.Client, "parity/grpc-broken", data);
        await _http.PushBlobAsync("parity/oci-broken", data);
        _blobs.FailAfterBytes = 600_000;

        var before = await MetricsAsync();
        var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => Layers.DownloadAsync(_server.Client, "parity/grpc-broken", Layers.DigestOf(data)));
        Assert.Equal(Grpc.Core.StatusCode.Unavailable, e.StatusCode);
        var afterGrpc = await MetricsAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => _http.GetByteArrayAsync($"/v2/parity/oci-broken/blobs/{Layers.DigestOf(data)}")); // the body is cut short
        var afterOci = await MetricsAsync();
        _blobs.FailAfterBytes = null;

        const string Errors = "cacheservice_backend_errors_total{backend=\"blobs\"}";
        Assert.Equal(1, Delta(before, afterGrpc, Errors));
        Assert.Equal(1, Delta(afterGrpc, afterOci, Errors));
        Assert.Equal(data, await Layers.DownloadAsync(_server.Client, "parity/grpc-broken", Layers.DigestOf(data))); // nothing was repaired away
    }

    // (upload metric, download metric, stats uploaded, stats downloaded) moved by `traffic`.
    private async Task<(double, double, long, long)> MeasureBytesAsync(string ns, Func<Task> traffic)
    {
        var before = await MetricsAsync();
        await traffic();
        var after = await MetricsAsync();
        var stats = await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = ns });
        const string Bytes = "cacheservice_layer_bytes_total{direction=\"{0}\"}";
        return (
            Delta(before, after, Bytes.Replace("{0}", "upload", StringComparison.Ordinal)),
            Delta(before, after, Bytes.Replace("{0}", "download", StringComparison.Ordinal)),
            stats.BytesUploaded,
            stats.BytesDownloaded);
    }

    // (hit, miss, degraded metrics, index errors, stats lookups, stats hits) moved by `traffic`.
    private async Task<(double, double, double, double, long, long)> MeasureLookupsAsync(string ns, Func<Task> traffic)
    {
        var before = await MetricsAsync();
        await traffic();
        var after = await MetricsAsync();
        var stats = await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = ns });
        string Series(string result) => $"cacheservice_lookups_total{{namespace=\"{ns}\",result=\"{result}\"}}";
        return (
            Delta(before, after, Series("hit")),
            Delta(before, after, Series("miss")),
            Delta(before, after, Series("degraded")),
            Delta(before, after, "cacheservice_backend_errors_total{backend=\"index\"}"),
            stats.Lookups,
            stats.Hits);
    }

    private async Task<(double Metric, long Stats)> MeasureEvictionsAsync(string ns, Func<Task> traffic)
    {
        var before = await MetricsAsync();
        await traffic();
        var after = await MetricsAsync();
        var stats = await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = ns });
        return (Delta(before, after, $"cacheservice_evictions_total{{namespace=\"{ns}\"}}"), stats.Evictions);
    }

    private Task<LookupResponse> Lookup(string ns, string key) =>
        _server.Client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key(key) }).ResponseAsync;

    private Task<string> MetricsAsync() => _http.GetStringAsync("/metrics");

    private static double Delta(string before, string after, string series) => Sample(after, series) - Sample(before, series);

    private static double Sample(string metrics, string series) =>
        metrics.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal)) is { } line
            ? double.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture)
            : 0;

    private static string DataDirectory(IServiceProvider sp) => sp.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory;

    /// <summary>The real store, whose reads can be made to fail part-way as a dropped connection to S3 would.</summary>
    private sealed class BreakingReads(IBlobStore inner) : BlobStoreDecorator(inner)
    {
        public long? FailAfterBytes { get; set; }

        public override async Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
        {
            var stream = await base.OpenReadAsync(ns, digest, offset, cancellationToken);
            return FailAfterBytes is { } limit ? new FailingStream(stream, limit) : stream;
        }

        private sealed class FailingStream(Stream inner, long limit) : ReadOnlyStream
        {
            private long _read;

            public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            {
                if (_read >= limit)
                {
                    throw new BackendUnavailableException("blobs", new IOException("connection reset by peer"));
                }

                var n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, limit - _read)], cancellationToken);
                _read += n;
                return n;
            }

            protected override void Dispose(bool disposing)
            {
                if (disposing)
                {
                    inner.Dispose();
                }

                base.Dispose(disposing);
            }
        }
    }
}
