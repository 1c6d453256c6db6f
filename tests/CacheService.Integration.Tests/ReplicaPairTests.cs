using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using CacheService.Testing;

namespace CacheService.Integration.Tests;

/// <summary>
/// Two replicas on one Redis and one Ceph RGW, as the Helm chart runs them: a registry upload whose
/// POST, PATCHes and PUT each reach another replica works, because the session lives in the object
/// store; and buildah pushes its cache through a round-robin balancer in front of the pair.
/// </summary>
[Collection(SharedRgw.Name)]
public sealed class ReplicaPairTests(RgwServer rgw) : IAsyncLifetime, IDisposable
{
    private const string Ns = "pair/app";

    private readonly RedisServers _redis = RedisServers.StartSingle();
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-pair-").FullName;
    private TestServer _a = null!;
    private TestServer _b = null!;
    private HttpClient _httpA = null!;
    private HttpClient _httpB = null!;

    public async Task InitializeAsync()
    {
        var s3 = rgw.Options();
        string[] args =
        [
            "--CacheService:Storage:BlobEngine=s3", $"--CacheService:S3:Endpoint={s3.Endpoint}", $"--CacheService:S3:Bucket={s3.Bucket}",
            $"--CacheService:S3:Prefix={s3.Prefix}", $"--CacheService:S3:AccessKey={s3.AccessKey}", $"--CacheService:S3:SecretKey={s3.SecretKey}",
            "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={_redis.Configuration}", RedisServers.EntryKeyArg,
        ];
        _a = await TestServer.StartAsync(args);
        _b = await TestServer.StartAsync(args);
        _httpA = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_a.HttpPort}") };
        _httpB = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_b.HttpPort}") };
    }

    public void Dispose()
    {
        _httpA.Dispose();
        _httpB.Dispose();
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        _redis.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static ByteArrayContent Chunk(byte[] data, long from)
    {
        var content = new ByteArrayContent(data);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.TryAddWithoutValidation("Content-Range", $"{from}-{from + data.Length - 1}");
        return content;
    }

    private async Task<Uri> OpenOnAAsync()
    {
        using var post = await _httpA.PostAsync($"/v2/{Ns}/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
        return post.Headers.Location!;
    }

    [Fact]
    public async Task A_chunked_upload_whose_every_request_reaches_the_other_replica_is_stored_whole()
    {
        var data = Layers.Random(3_000_000, 21);
        var digest = Layers.DigestOf(data);
        var location = await OpenOnAAsync();

        using var first = await _httpB.PatchAsync(location, Chunk(data[..1_000_000], 0));
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal("0-999999", first.Headers.GetValues("Range").Single());
        using var second = await _httpA.PatchAsync(first.Headers.Location, Chunk(data[1_000_000..], 1_000_000));
        Assert.Equal("0-2999999", second.Headers.GetValues("Range").Single());
        using var status = await _httpB.GetAsync(second.Headers.Location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        Assert.Equal("0-2999999", status.Headers.GetValues("Range").Single());

        using var put = await _httpA.PutAsync($"{second.Headers.Location}?digest={digest}", null);
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        Assert.Equal(data, await _httpB.GetByteArrayAsync($"/v2/{Ns}/blobs/{digest}"));
        using var after = await _httpB.GetAsync(location);
        Assert.Equal(HttpStatusCode.NotFound, after.StatusCode); // the completed session is gone from the store
    }

    [Fact]
    public async Task A_chunk_at_the_wrong_offset_a_cancel_and_a_wrong_digest_behave_alike_on_either_replica()
    {
        var data = Layers.Random(100_000, 22);
        var location = await OpenOnAAsync();
        using (var patch = await _httpB.PatchAsync(location, Chunk(data, 0)))
        {
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        }

        using (var gap = await _httpA.PatchAsync(location, Chunk(data, 5)))
        {
            Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, gap.StatusCode);
        }

        using (var wrong = await _httpA.PutAsync($"{location}?digest={Layers.DigestOf([1, 2, 3])}", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
            Assert.Contains("DIGEST_INVALID", await wrong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var gone = await _httpB.GetAsync(location))
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode); // a failed PUT ends the session
        }

        using (var head = await _httpB.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/{Ns}/blobs/{Layers.DigestOf([1, 2, 3])}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }

        var cancelled = await OpenOnAAsync();
        using (var delete = await _httpB.DeleteAsync(cancelled))
        {
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        }

        using var late = await _httpA.PatchAsync(cancelled, Chunk(data, 0));
        Assert.Equal(HttpStatusCode.NotFound, late.StatusCode);
        Assert.Contains("BLOB_UPLOAD_UNKNOWN", await late.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var foreign = await _httpB.GetAsync(location.ToString().Replace(Ns, "pair/other", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode); // a session belongs to its repository
    }

    [Fact]
    public async Task A_session_idle_past_the_presign_expiry_and_grace_is_swept_from_the_store_and_not_before()
    {
        var session = await OpenOnAAsync();
        using (var patch = await _httpB.PatchAsync(session, Chunk(Layers.Random(10_000, 23), 0)))
        {
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        }

        // The store stamps objects with its own clock: A's sweep, 15 minutes on, keeps the session
        // (the presign expiry, 15 min, plus the blob grace period, 10 min, have not passed) ...
        // The clock moves on while the test waits for the round to start, in steps small enough
        // that a round slow to start on a busy machine still sees less than the 10 minutes' margin.
        _a.Time.SetUtcNow(DateTimeOffset.UtcNow + TimeSpan.FromMinutes(15));
        await _a.RunPeriodicWorkAsync("orphan sweep", _a.Rounds("orphan sweep") + 1, TimeSpan.FromSeconds(1));
        using (var kept = await _httpB.GetAsync(session))
        {
            Assert.Equal(HttpStatusCode.NoContent, kept.StatusCode);
        }

        // ... and a later one deletes it, parts and all (a round already under way when the clock
        // moved still has the old cutoff: the next ones have the new).
        _a.Time.SetUtcNow(DateTimeOffset.UtcNow + TimeSpan.FromMinutes(30));
        var status = HttpStatusCode.NoContent;
        for (var round = 0; round < 3 && status != HttpStatusCode.NotFound; round++)
        {
            await _a.RunPeriodicWorkAsync("orphan sweep", _a.Rounds("orphan sweep") + 1, TimeSpan.FromMinutes(5));
            using var swept = await _httpB.GetAsync(session);
            status = swept.StatusCode;
        }

        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task A_chunk_to_a_gateway_that_hangs_answers_unavailable_within_the_idle_timeout_and_the_session_survives()
    {
        var s3 = rgw.Options();
        await using var server = await TestServer.StartAsync(
            "--CacheService:Storage:BlobEngine=s3", $"--CacheService:S3:Endpoint={s3.Endpoint}", $"--CacheService:S3:Bucket={s3.Bucket}",
            $"--CacheService:S3:Prefix={s3.Prefix}", $"--CacheService:S3:AccessKey={s3.AccessKey}", $"--CacheService:S3:SecretKey={s3.SecretKey}",
            "--CacheService:S3:IdleTimeout=00:00:03");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        using var post = await http.PostAsync($"/v2/{Ns}/blobs/uploads/", null);
        var session = post.Headers.Location!;

        rgw.PauseGateway(); // a store that hangs, not one that refuses
        try
        {
            var clock = Stopwatch.StartNew();
            using var patch = await http.PatchAsync(session, Chunk(Layers.Random(100_000, 24), 0));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, patch.StatusCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the stalled chunk took {clock.Elapsed}");
        }
        finally
        {
            rgw.ResumeGateway();
        }

        using var status = await http.GetAsync(session); // the session is there, without the lost chunk
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        Assert.Equal("0-0", status.Headers.GetValues("Range").Single());
    }

    [Fact]
    public async Task Buildah_pushes_its_cache_through_both_replicas_round_robin_and_a_fresh_root_pulls_it_back()
    {
        var proxyPort = ServiceScripts.FreePort();
        var proxy = Path.Combine(_dir, "haproxy");
        ServiceScripts.Run("haproxy.sh", "start", proxy, proxyPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _a.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), _b.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            var context = Directory.CreateDirectory(Path.Combine(_dir, "context")).FullName;
            File.Copy("/bin/busybox", Path.Combine(context, "busybox"));
            await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), """
                FROM scratch
                COPY busybox /bin/busybox
                RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /out && /bin/busybox echo pair > /out/pair.txt"]
                """);

            var pushed = await BuildahAsync("a", $"127.0.0.1:{proxyPort}", "--cache-to", context);
            Assert.Equal(2, pushed.Split('\n').Count(l => l.Contains("Pushing cache", StringComparison.Ordinal)));
            var pulled = await BuildahAsync("b", $"127.0.0.1:{proxyPort}", "--cache-from", context);
            Assert.Equal(2, pulled.Split('\n').Count(l => l.Contains("Cache pulled from remote", StringComparison.Ordinal)));

            // Both replicas took part of the pushes' uploads.
            foreach (var server in (TestServer[])[_a, _b])
            {
                Assert.True(await server.MetricAsync("cacheservice_registry_requests_total{method=\"PATCH\",status=\"202\"}") > 0
                    || await server.MetricAsync("cacheservice_registry_requests_total{method=\"PUT\",status=\"201\"}") > 0,
                    $"replica on {server.HttpPort} served no upload request");
            }
        }
        finally
        {
            ServiceScripts.Run("haproxy.sh", "stop", proxy);
        }
    }

    private Task<string> BuildahAsync(string builder, string registry, string cacheFlag, string context) =>
        Tools.BuildahBudAsync(_dir, builder, registry, cacheFlag, context);
}
