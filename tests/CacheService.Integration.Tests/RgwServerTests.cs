using System.Diagnostics;
using CacheService.Api.V1;
using CacheService.Blobs.S3;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Integration.Tests;

/// <summary>The whole server with its blobs on a real Ceph RGW, selected by configuration alone.</summary>
[Collection(SharedRgw.Name)]
public sealed class RgwServerTests(RgwServer rgw) : IDisposable
{
    private readonly HttpClient _http = new();

    public void Dispose() => _http.Dispose();

    private static Task<TestServer> StartServerAsync(S3BlobOptions s3, params string[] args) => TestServer.StartAsync(
    [
        "--CacheService:Storage:BlobEngine=s3",
        $"--CacheService:S3:Endpoint={s3.Endpoint}",
        $"--CacheService:S3:Bucket={s3.Bucket}",
        $"--CacheService:S3:Prefix={s3.Prefix}",
        $"--CacheService:S3:AccessKey={s3.AccessKey}",
        $"--CacheService:S3:SecretKey={s3.SecretKey}",
        .. args,
    ]);

    [Fact]
    public async Task The_round_trip_works_with_blobs_on_rgw()
    {
        var s3 = rgw.Options();
        await using var server = await StartServerAsync(s3);
        var data = Layers.Random(3 * 1024 * 1024, 1);
        var layer = await Layers.UploadAndCommitAsync(server.Client, "rgw/main", "k", data);

        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "rgw/main", Key = Layers.Key("k") })).Hit);
        Assert.Equal(data, await Layers.DownloadAsync(server.Client, "rgw/main", layer.Digest));
        Assert.Equal(data[2_000_001..], await Layers.DownloadAsync(server.Client, "rgw/main", layer.Digest, offset: 2_000_001));
        Assert.True((await Layers.UploadAsync(server.Client, "rgw/main", data)).AlreadyExisted);
        var stat = await server.Client.StatLayersAsync(new StatLayersRequest { Namespace = "rgw/main", Digests = { layer.Digest } });
        Assert.Equal(data.Length, Assert.Single(stat.Present).Size);
    }

    [Fact]
    public async Task Readiness_follows_the_gateway()
    {
        await using var server = await StartServerAsync(rgw.Options());
        Assert.True(await server.WaitForReadinessAsync(true));
        rgw.StopGateway();
        try
        {
            Assert.True(await server.WaitForReadinessAsync(false), "a stopped gateway must make the server unready");
        }
        finally
        {
            rgw.StartGateway();
        }

        Assert.True(await server.WaitForReadinessAsync(true), "the server must be ready again once the gateway is back");
    }

    [Fact]
    public async Task With_the_gateway_stopped_blob_calls_fail_unavailable_within_the_deadline_and_recover_after()
    {
        var s3 = rgw.Options();
        await using var server = await StartServerAsync(s3);
        var data = Layers.Random(100_000, 8);
        var layer = await Layers.UploadAndCommitAsync(server.Client, "rgw/outage", "k", data);

        rgw.StopGateway();
        try
        {
            var clock = Stopwatch.StartNew();
            var deadline = DateTime.UtcNow.AddSeconds(10);
            var download = await Assert.ThrowsAsync<RpcException>(() => DownloadWithDeadline(server, layer.Digest, deadline));
            Assert.Equal(StatusCode.Unavailable, download.StatusCode);
            var upload = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(server.Client, "rgw/outage", Layers.Random(1000, 9)));
            Assert.Equal(StatusCode.Unavailable, upload.StatusCode);
            var commit = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.CommitAsync(
                new CommitRequest { Namespace = "rgw/outage", Key = Layers.Key("k2"), Layer = layer }, deadline: deadline));
            Assert.Equal(StatusCode.Unavailable, commit.StatusCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"three calls against a stopped gateway took {clock.Elapsed}");

            // Lookups need only the index: the cache still answers.
            Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "rgw/outage", Key = Layers.Key("k") })).Hit);
        }
        finally
        {
            rgw.StartGateway();
        }

        Assert.Equal(data, await DownloadOnceBackAsync(server, "rgw/outage", layer.Digest));
    }

    [Fact]
    public async Task A_gateway_that_hangs_fails_transfers_in_flight_within_the_idle_timeout_opens_the_breaker_and_recovers()
    {
        await using var server = await StartServerAsync(rgw.Options(), "--CacheService:S3:IdleTimeout=00:00:03");
        var data = Layers.Random(32 << 20, 12); // far more than the socket buffers between the gateway and the server hold
        var layer = await Layers.UploadAndCommitAsync(server.Client, "rgw/stall", "k", data);
        using var download = server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "rgw/stall", Digest = layer.Digest });
        Assert.True(await download.ResponseStream.MoveNext(CancellationToken.None));

        rgw.PauseGateway();
        try
        {
            var clock = Stopwatch.StartNew();
            var cut = await Assert.ThrowsAsync<RpcException>(async () =>
            {
                while (await download.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            });
            Assert.Equal(StatusCode.Unavailable, cut.StatusCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"the stalled download took {clock.Elapsed} to fail");

            var upload = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(server.Client, "rgw/stall", Layers.Random(1000, 13)));
            Assert.True(upload.StatusCode == StatusCode.Unavailable, upload.Status.ToString());
            var stats = await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => Assert.ThrowsAsync<RpcException>(async () =>
                await server.Client.StatLayersAsync(new StatLayersRequest { Namespace = "rgw/stall", Digests = { layer.Digest } }))));
            Assert.All(stats, e => Assert.Equal(StatusCode.Unavailable, e.StatusCode));

            clock.Restart(); // the breaker is open: the next call does not wait on the gateway at all
            var fast = await Assert.ThrowsAsync<RpcException>(async () =>
                await server.Client.StatLayersAsync(new StatLayersRequest { Namespace = "rgw/stall", Digests = { layer.Digest } }));
            Assert.Equal(StatusCode.Unavailable, fast.StatusCode);
            Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(900), $"with the breaker open a call took {clock.Elapsed}");
            Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "rgw/stall", Key = Layers.Key("k") })).Hit); // the index still answers
        }
        finally
        {
            rgw.ResumeGateway();
        }

        Assert.Equal(data, await DownloadOnceBackAsync(server, "rgw/stall", layer.Digest));
    }

    [Fact]
    public async Task A_hundred_concurrent_pulls_of_one_cold_layer_over_both_transports_all_get_every_byte_and_leave_no_spool()
    {
        await using var server = await StartServerAsync(rgw.Options());
        var data = Layers.Random(4 << 20, 14);
        var layer = await Layers.UploadAndCommitAsync(server.Client, "rgw/cold", "k", data);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };

        var pulls = Enumerable.Range(0, 100).Select(i => i % 2 == 0
            ? Layers.DownloadAsync(server.Client, "rgw/cold", layer.Digest)
            : http.GetByteArrayAsync($"/v2/rgw/cold/blobs/{layer.Digest}"));
        Assert.All(await Task.WhenAll(pulls), bytes => Assert.Equal(data, bytes));

        var spool = Path.Combine(server.DataDirectory, "spool");
        Assert.True(Directory.Exists(spool), "the S3 engine reads through the single-flight spool");
        for (var attempt = 0; attempt < 200 && Directory.GetFiles(spool).Length > 0; attempt++)
        {
            await Task.Delay(25);
        }

        Assert.Empty(Directory.GetFiles(spool));
    }

    [Fact]
    public async Task The_server_runs_on_redis_and_rgw_together()
    {
        using var redis = RedisServers.StartSingle();
        await using var server = await StartServerAsync(rgw.Options(),
            "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={redis.Configuration}", RedisServers.EntryKeyArg);
        var data = Layers.Random(1_000_000, 10);
        var layer = await Layers.UploadAndCommitAsync(server.Client, "both", "k", data);
        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "both", Key = Layers.Key("k") })).Hit);
        Assert.Equal(data, await Layers.DownloadAsync(server.Client, "both", layer.Digest));
        Assert.True((await server.Client.VerifyAsync(new VerifyRequest { Namespace = "both" })).Consistent);
        Assert.NotNull(server.Services.GetService<S3BlobStore>());
    }

    [Fact]
    public async Task With_local_copies_a_pull_after_a_push_reads_the_replicas_copy_but_the_gateway_decides_what_exists()
    {
        var s3 = rgw.Options();
        await using var server = await StartServerAsync(s3, "--CacheService:S3:LocalCopyBytes=100000000", "--CacheService:Integrity:VerifiedRegistryReads=1");
        _http.BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}");
        var data = Layers.Random(1_000_000, 21);
        var digest = await _http.PushBlobAsync("rgw/copies", data);
        var layer = await Layers.UploadAndCommitAsync(server.Client, "rgw/copies", "k", Layers.Random(500_000, 22));
        var minio = S3BlobStore.CreateClient(s3);
        string ObjectName(string blob) => $"{s3.Prefix}/rgw/copies/blobs/sha256/{blob["sha256:".Length..]}";

        // The gateway's bytes are replaced behind the server's back: what it serves, verified, is the copy it kept.
        foreach (var blob in new[] { digest, layer.Digest })
        {
            using var other = new MemoryStream(Layers.Random(blob == digest ? 1_000_000 : 500_000, 23));
            await minio.PutObjectAsync(new Minio.DataModel.Args.PutObjectArgs().WithBucket(s3.Bucket).WithObject(ObjectName(blob)).WithStreamData(other).WithObjectSize(other.Length));
        }

        Assert.Equal(data, await _http.GetByteArrayAsync($"/v2/rgw/copies/blobs/{digest}"));
        Assert.Equal(layer.Digest, Layers.DigestOf(await Layers.DownloadAsync(server.Client, "rgw/copies", layer.Digest)));
        Assert.Equal(0, await server.MetricAsync("cacheservice_corrupt_blobs_total{check=\"read\"}"));

        // Gone from the gateway (another replica's collector): gone here too, copy or not.
        await minio.RemoveObjectAsync(new Minio.DataModel.Args.RemoveObjectArgs().WithBucket(s3.Bucket).WithObject(ObjectName(digest)));
        using var missing = await _http.GetAsync($"/v2/rgw/copies/blobs/{digest}");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task Registry_blob_gets_can_redirect_to_the_object_store_and_still_count()
    {
        var s3 = rgw.Options();
        await using var server = await StartServerAsync(s3, "--CacheService:S3:DirectTransfer=true", "--CacheService:Registry:RedirectBlobGets=true");
        _http.BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}");
        var (manifest, _) = await _http.PushImageAsync("rgw/redirect", "v1", seed: 20, layerBytes: 1_000_000);
        var layer = System.Text.Json.JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;

        using (var noFollow = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }))
        using (var redirect = await noFollow.GetAsync($"http://127.0.0.1:{server.HttpPort}/v2/rgw/redirect/blobs/{layer}"))
        {
            Assert.Equal(System.Net.HttpStatusCode.TemporaryRedirect, redirect.StatusCode);
            Assert.StartsWith(s3.Endpoint, redirect.Headers.Location!.AbsoluteUri, StringComparison.Ordinal);
            Assert.Equal(layer, redirect.Headers.GetValues("Docker-Content-Digest").Single());
        }

        // A client following it gets the blob, and a range of it, from the gateway; the bytes count as served.
        var whole = await _http.GetByteArrayAsync($"/v2/rgw/redirect/blobs/{layer}");
        Assert.Equal(layer, Layers.DigestOf(whole));
        using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/v2/rgw/redirect/blobs/{layer}");
        ranged.Headers.Range = new System.Net.Http.Headers.RangeHeaderValue(1000, 1999);
        using var part = await _http.SendAsync(ranged);
        Assert.Equal(whole[1000..2000], await part.Content.ReadAsByteArrayAsync());
        Assert.Equal(2_000_000 + 1000, await server.MetricAsync("cacheservice_layer_bytes_total{direction=\"download\"}")); // two whole GETs (one not followed), one range
        using var missing = await _http.GetAsync($"/v2/rgw/redirect/blobs/{Layers.DigestOf([1])}");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode); // nothing to redirect to
    }

    [Fact]
    public async Task Direct_transfer_moves_bytes_past_the_server_and_publishes_only_verified_uploads()
    {
        var s3 = rgw.Options();
        await using var server = await StartServerAsync(s3, "--CacheService:S3:DirectTransfer=true");
        var client = server.Client;
        var data = Layers.Random(2_000_000, 11);
        var digest = Layers.DigestOf(data);

        // A wrong body is refused at completion and never becomes visible.
        var bad = await client.PresignLayerAsync(new PresignLayerRequest { Namespace = "direct", Digest = digest, Direction = TransferDirection.Upload });
        (await _http.PutAsync(new Uri(bad.Url), new ByteArrayContent(Layers.Random(2_000_000, 12)))).EnsureSuccessStatusCode();
        var refused = await Assert.ThrowsAsync<RpcException>(async () => await client.CompleteDirectUploadAsync(new CompleteDirectUploadRequest
        {
            Namespace = "direct",
            UploadId = bad.UploadId,
            Digest = digest,
            Size = data.Length,
            MediaType = Layers.MediaType,
        }));
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        Assert.Empty((await client.StatLayersAsync(new StatLayersRequest { Namespace = "direct", Digests = { digest } })).Present);

        // The right body is verified, published, committed and downloaded directly.
        var upload = await client.PresignLayerAsync(new PresignLayerRequest { Namespace = "direct", Digest = digest, Direction = TransferDirection.Upload });
        Assert.True(upload.ExpiresAt > DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        (await _http.PutAsync(new Uri(upload.Url), new ByteArrayContent(data))).EnsureSuccessStatusCode();
        var completed = await client.CompleteDirectUploadAsync(new CompleteDirectUploadRequest
        {
            Namespace = "direct",
            UploadId = upload.UploadId,
            Digest = digest,
            Size = data.Length,
            MediaType = Layers.MediaType,
        });
        Assert.False(completed.AlreadyExisted);
        await client.CommitAsync(new CommitRequest { Namespace = "direct", Key = Layers.Key("k"), Layer = Layers.Descriptor(data) });

        var download = await client.PresignLayerAsync(new PresignLayerRequest { Namespace = "direct", Digest = digest, Direction = TransferDirection.Download });
        Assert.Equal(data, await _http.GetByteArrayAsync(new Uri(download.Url)));
        Assert.True((await client.PresignLayerAsync(new PresignLayerRequest { Namespace = "direct", Digest = digest, Direction = TransferDirection.Upload })).AlreadyExists);

        var reused = await Assert.ThrowsAsync<RpcException>(async () => await client.CompleteDirectUploadAsync(new CompleteDirectUploadRequest
        {
            Namespace = "direct",
            UploadId = upload.UploadId,
            Digest = digest,
            Size = data.Length,
            MediaType = Layers.MediaType,
        }));
        Assert.Equal(StatusCode.FailedPrecondition, reused.StatusCode); // the staging copy is gone
    }

    [Fact]
    public async Task Direct_transfer_is_refused_unless_enabled()
    {
        await using var server = await StartServerAsync(rgw.Options());
        var e = await Assert.ThrowsAsync<RpcException>(async () => await server.Client.PresignLayerAsync(
            new PresignLayerRequest { Namespace = "direct", Digest = Layers.DigestOf([1]), Direction = TransferDirection.Upload }));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
    }

    // Downloads once the gateway is back: the circuit breaker lets a trial call through after its break.
    private static async Task<byte[]?> DownloadOnceBackAsync(TestServer server, string ns, string digest)
    {
        for (var attempt = 0; attempt < 150; attempt++)
        {
            try
            {
                return await Layers.DownloadAsync(server.Client, ns, digest);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
            {
                await Task.Delay(100);
            }
        }

        return null;
    }

    private static async Task<byte[]> DownloadWithDeadline(TestServer server, string digest, DateTime deadline)
    {
        using var call = server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "rgw/outage", Digest = digest }, deadline: deadline);
        await foreach (var _ in call.ResponseStream.ReadAllAsync())
        {
        }

        return [];
    }
}
