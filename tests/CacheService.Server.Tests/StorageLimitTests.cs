using System.Net;
using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;

namespace CacheService.Server.Tests;

/// <summary>
/// What uploads may hold (issue 13, findings 5 and 9): registry upload sessions are capped,
/// expire when idle and leave nothing when they fail; no upload is larger than its namespace's
/// budget; the storage ceiling and the free-disk floor refuse with RESOURCE_EXHAUSTED before a
/// byte is stored; every refusal is counted.
/// </summary>
public sealed class StorageLimitTests : IDisposable
{
    private readonly HttpClient _http = new();

    public void Dispose() => _http.Dispose();

    private static string Refusals(string reason) => $"cacheservice_refusals_total{{reason=\"{reason}\"}}";

    private async Task<TestServer> StartAsync(params string[] args)
    {
        var server = await TestServer.StartAsync(args);
        _http.BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}");
        return server;
    }

    private static string[] StagedFiles(TestServer server) => Directory.GetFiles(Path.Combine(server.DataDirectory, "registry-uploads"));

    private async Task<string> OpenSessionAsync(string repo)
    {
        using var post = await _http.PostAsync($"/v2/{repo}/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, post.StatusCode);
        return post.Headers.Location!.OriginalString;
    }

    [Fact]
    public async Task Upload_sessions_past_the_cap_are_refused_with_429_and_counted_until_one_ends()
    {
        await using var server = await StartAsync("--CacheService:Limits:MaxUploadSessions=3");
        var open = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            open.Add(await OpenSessionAsync("limits/cap"));
        }

        using var refused = await _http.PostAsync("/v2/limits/cap/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        Assert.Contains("TOOMANYREQUESTS", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, await server.MetricAsync(Refusals("upload_sessions")));
        Assert.Equal(3, StagedFiles(server).Length);

        using (var cancel = await _http.DeleteAsync(open[0]))
        {
            Assert.Equal(HttpStatusCode.NoContent, cancel.StatusCode);
        }

        await OpenSessionAsync("limits/cap");
    }

    [Fact]
    public async Task A_session_idle_past_the_timeout_is_dropped_with_its_bytes_and_a_busy_one_is_not()
    {
        await using var server = await StartAsync("--CacheService:Limits:UploadIdleTimeout=00:05:00");
        var idle = await OpenSessionAsync("limits/idle");
        using (var patch = await _http.PatchAsync(idle, new ByteArrayContent(Layers.Random(70_000, 1))))
        {
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        }

        server.Time.Advance(TimeSpan.FromMinutes(4));
        var fresh = await OpenSessionAsync("limits/idle");
        server.Time.Advance(TimeSpan.FromMinutes(2)); // idle: 6 minutes; fresh: 2
        await server.RunPeriodicWorkAsync("upload session expiry", 1, TimeSpan.FromSeconds(1));

        using (var gone = await _http.GetAsync(idle))
        {
            Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
        }

        using (var alive = await _http.GetAsync(fresh))
        {
            Assert.Equal(HttpStatusCode.NoContent, alive.StatusCode);
        }

        Assert.Single(StagedFiles(server));
    }

    [Fact]
    public async Task A_whole_blob_in_one_request_goes_straight_to_the_store_without_a_session()
    {
        await using var server = await StartAsync("--CacheService:Limits:MaxUploadSessions=1");
        var session = await OpenSessionAsync("limits/direct"); // the only session there may be

        // A monolithic POST needs none: staged, it would have been refused with 429.
        var data = Layers.Random(50_000, 5);
        using (var post = await _http.PostAsync($"/v2/limits/direct/blobs/uploads/?digest={Layers.DigestOf(data)}", new ByteArrayContent(data)))
        {
            Assert.Equal(HttpStatusCode.Created, post.StatusCode);
        }

        using (var again = await _http.PostAsync($"/v2/limits/direct/blobs/uploads/?digest={Layers.DigestOf(data)}", new ByteArrayContent(data)))
        {
            Assert.Equal(HttpStatusCode.Created, again.StatusCode); // stored already: its body is read and dropped
        }

        // A PUT with the whole blob on an empty session streams into the blob store's own upload
        // while the session's file stays empty.
        var body = new HeldContent();
        var put = _http.PutAsync($"{session}?digest={Layers.DigestOf(new byte[HeldContent.Size])}", body);
        await body.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var blobUploads = Path.Combine(server.DataDirectory, "blobs", ".uploads");
        for (var i = 0; i < 600 && !(Directory.Exists(blobUploads) && Directory.GetFiles(blobUploads).Length > 0); i++)
        {
            await Task.Delay(50);
        }

        Assert.NotEmpty(Directory.GetFiles(blobUploads));
        Assert.Equal(0, new FileInfo(StagedFiles(server).Single()).Length);
        body.Release.SetResult();
        using (var created = await put)
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        Assert.Empty(StagedFiles(server)); // the session ended with the PUT
        using var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/limits/direct/blobs/{Layers.DigestOf(new byte[HeldContent.Size])}"));
        Assert.Equal(HeldContent.Size, head.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task An_abandoned_monolithic_upload_stores_nothing_and_leaves_no_file()
    {
        await using var server = await StartAsync();
        var digest = Layers.DigestOf(new byte[HeldContent.Size]);
        var body = new HeldContent();
        using var abandon = new CancellationTokenSource();
        var post = _http.PostAsync($"/v2/limits/abandoned/blobs/uploads/?digest={digest}", body, abandon.Token);
        await body.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var blobUploads = Path.Combine(server.DataDirectory, "blobs", ".uploads");
        bool Staging() => Directory.Exists(blobUploads) && Directory.GetFiles(blobUploads).Length > 0;
        for (var i = 0; i < 600 && !Staging(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(Staging(), "the upload never reached the blob store");
        await abandon.CancelAsync(); // the client goes away half way through its declared length
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => post);
        for (var i = 0; i < 600 && Staging(); i++)
        {
            await Task.Delay(50);
        }

        Assert.False(Staging(), "the half upload's file outlived it");
        using var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/limits/abandoned/blobs/{digest}"));
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
    }

    [Fact]
    public async Task A_failed_monolithic_push_and_a_failed_put_leave_no_session_and_no_file()
    {
        await using var server = await StartAsync();
        var data = Layers.Random(50_000, 2);
        using (var wrong = await _http.PostAsync($"/v2/limits/failed/blobs/uploads/?digest={Layers.DigestOf(Layers.Random(50_000, 3))}", new ByteArrayContent(data)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, wrong.StatusCode);
        }

        var session = await OpenSessionAsync("limits/failed");
        using (var put = await _http.PutAsync($"{session}?digest={Layers.DigestOf(Layers.Random(50_000, 3))}", new ByteArrayContent(data)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, put.StatusCode);
        }

        Assert.Empty(StagedFiles(server));
        using var status = await _http.GetAsync(session);
        Assert.Equal(HttpStatusCode.NotFound, status.StatusCode);
    }

    [Fact]
    public async Task Two_requests_never_write_one_session_at_once()
    {
        await using var server = await StartAsync();
        var session = await OpenSessionAsync("limits/busy");
        var body = new HeldContent();
        var first = _http.PatchAsync(session, body);
        await body.Started.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var held = false;
        for (var attempt = 0; attempt < 200 && !held; attempt++)
        {
            using var status = await _http.GetAsync(session); // asks for the session too: refused while the PATCH holds it
            held = status.StatusCode == HttpStatusCode.Conflict;
            await Task.Delay(held ? 0 : 25);
        }

        if (!held && first.IsCompleted)
        {
            using var early = await first;
            Assert.Fail($"the first PATCH ended before the test released it: {early.StatusCode} {await early.Content.ReadAsStringAsync()}");
        }

        Assert.True(held, "the first PATCH never held the session");
        using (var second = await _http.PatchAsync(session, new ByteArrayContent([1, 2, 3])))
        {
            Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        }

        body.Release.SetResult();
        using var done = await first;
        Assert.Equal(HttpStatusCode.Accepted, done.StatusCode);
        Assert.Equal($"0-{HeldContent.Size - 1}", done.Headers.GetValues("Range").Single());
    }

    [Fact]
    public async Task No_upload_may_be_larger_than_its_namespaces_whole_budget_over_either_transport()
    {
        await using var server = await StartAsync("--CacheService:Eviction:NamespaceBudgetBytes:limits/tiny=100000");
        var big = Layers.Random(200_000, 4);
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(server.Client, "limits/tiny", big));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);

        using (var monolithic = await _http.PostAsync($"/v2/limits/tiny/blobs/uploads/?digest={Layers.DigestOf(big)}", new ByteArrayContent(big)))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, monolithic.StatusCode);
        }

        var session = await OpenSessionAsync("limits/tiny");
        using (var first = await _http.PatchAsync(session, new ByteArrayContent(big.AsSpan(0, 60_000).ToArray())))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        }

        using (var second = await _http.PatchAsync(session, new ByteArrayContent(big.AsSpan(60_000, 60_000).ToArray())))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, second.StatusCode);
        }

        using (var status = await _http.GetAsync(session))
        {
            Assert.Equal("0-59999", status.Headers.GetValues("Range").Single()); // the refused chunk left nothing
        }

        Assert.Equal(60_000, new FileInfo(StagedFiles(server).Single()).Length);
        Assert.True(await server.MetricAsync(Refusals("namespace_budget")) >= 2);
        var stat = await server.Client.StatLayersAsync(new StatLayersRequest { Namespace = "limits/tiny", Digests = { Layers.DigestOf(big) } });
        Assert.Empty(stat.Present);

        await Layers.UploadAndCommitAsync(server.Client, "limits/tiny", "fits", Layers.Random(90_000, 5)); // within the budget, it goes in
    }

    [Fact]
    public async Task An_upload_that_would_leave_the_disk_below_its_free_space_floor_is_refused()
    {
        await using var server = await StartAsync("--CacheService:Limits:MinFreeDiskBytes=1125899906842624"); // 1 PiB: no disk here has it
        var data = Layers.Random(1000, 8);
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(server.Client, "limits/disk", data));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("MinFreeDiskBytes", e.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, await server.MetricAsync(Refusals("free_disk")));
        Assert.False(File.Exists(server.BlobPath("limits/disk", Layers.DigestOf(data))));
    }

    [Fact]
    public async Task Past_the_namespace_limit_lookups_of_unknown_names_create_nothing_and_new_namespaces_are_refused_writes()
    {
        await using var server = await StartAsync("--CacheService:Limits:MaxNamespaces=3");
        await server.RunPeriodicWorkAsync("namespace sample", 1, TimeSpan.FromSeconds(1));
        var kept = await Layers.UploadAndCommitAsync(server.Client, "team/main", "k", Layers.Random(1000, 20));
        await Layers.UploadAndCommitAsync(server.Client, "team/dev", "k", Layers.Random(1000, 21));

        for (var i = 0; i < 20; i++)
        {
            await server.Client.LookupAsync(new LookupRequest { Namespace = $"junk/{i}", Key = Layers.Key("k") });
        }

        // One junk name took the last place; the other nineteen left no trace in the index.
        Assert.Equal(1, (await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "junk/0" })).Lookups);
        Assert.Equal(0, (await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "junk/7" })).Lookups);

        // An unknown namespace past the limit still reads its fallbacks, and known ones still count.
        var fallback = await server.Client.LookupAsync(new LookupRequest { Namespace = "team/pr-9", Key = Layers.Key("k"), FallbackNamespaces = { "team/main" } });
        Assert.True(fallback.Hit);
        Assert.Equal(kept, fallback.Layer);
        await server.Client.LookupAsync(new LookupRequest { Namespace = "team/main", Key = Layers.Key("k") });
        Assert.Equal(1, (await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" })).Lookups);

        var refused = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAndCommitAsync(server.Client, "team/pr-9", "k", Layers.Random(1000, 22)));
        Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
        Assert.Contains("MaxNamespaces", refused.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1, await server.MetricAsync(Refusals("namespace_count")));
        await Layers.UploadAndCommitAsync(server.Client, "team/dev", "k2", Layers.Random(1000, 23)); // namespaces it holds take writes
    }

    /// <summary>A body that sends half, then waits to be let go before sending the rest.</summary>
    private sealed class HeldContent : HttpContent
    {
        public const int Size = 20_000;

        public TaskCompletionSource Started { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        // A request cancelled while held ends here too (the client gives up half way).
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(new byte[Size / 2], cancellationToken);
            await stream.FlushAsync(cancellationToken);
            Started.SetResult();
            await Release.Task.WaitAsync(cancellationToken);
            await stream.WriteAsync(new byte[Size / 2], cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = Size;
            return true;
        }
    }
}
