using System.Net;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Core;
using CacheService.Core.Blobs;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Testing;

/// <summary>
/// The fault catalogue (DESIGN §5, issue 13), written once and derived once per engine pair: bytes
/// that do not match their digest, clients that vanish mid-push, many writers of one blob and of
/// one key, blobs deleted or rotted behind the index, eviction and collection while a download is
/// in flight, a deadline far shorter than a pull, and the hard storage limit. Each must leave the
/// cache whole: no partial blob, no leftover file or read, no mixed bytes, no hit without bytes.
/// </summary>
/// <remarks>
/// A derived class says how to start a server on its engines and how to reach behind that
/// server's back (rot a blob, find what it staged or left open), and nothing else.
/// </remarks>
public abstract class FaultCatalogue : IAsyncLifetime, IDisposable
{
    /// <summary>Talks to <see cref="Server"/>'s HTTP port.</summary>
    protected HttpClient Http { get; } = new();

    /// <summary>The server of the running test.</summary>
    protected TestServer Server { get; private set; } = null!;

    private IBlobStore Store => Server.Services.GetRequiredService<IBlobStore>();

    /// <summary>A server on the engines under test, with <paramref name="args"/> added to its configuration.</summary>
    protected abstract Task<TestServer> StartServerAsync(params string[] args);

    /// <summary>Overwrites the last byte of a stored blob behind the server's back: same size, other bytes.</summary>
    protected abstract Task CorruptAsync(string ns, string digest);

    /// <summary>Blob uploads the store has staged and not yet published or removed.</summary>
    protected abstract string[] StagedBlobUploads();

    /// <summary>Reads of the blob still open in the server: file handles, fetches in flight.</summary>
    protected abstract int ReadsLeftOpen(string ns, string digest);

    public async Task InitializeAsync() => await UseServerAsync(await StartServerAsync());

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what the test class holds; a derived class adds its services.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Http.Dispose();
        }
    }

    // For a test that needs other settings: the server started for it goes, this one takes its place.
    private async Task UseServerAsync(TestServer server)
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        Server = server;
        Http.BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}");
    }

    private string[] StagedRegistryUploads() => Directory.GetFiles(Path.Combine(Server.DataDirectory, "registry-uploads"));

    private Task<long?> StoredSizeAsync(string ns, string digest) => Store.GetSizeAsync(ns, Digest.Parse(digest, "digest"), CancellationToken.None);

    private async Task<bool> Hit(string ns, string key) =>
        (await Server.Client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key(key) })).Hit;

    [Fact]
    public async Task A_zero_byte_upload_cannot_claim_a_real_layers_digest_over_either_transport()
    {
        var real = Layers.Random(5000, 1);
        using (var upload = Server.Client.UploadLayer())
        {
            await upload.RequestStream.WriteAsync(new UploadLayerRequest { Header = new UploadHeader { Namespace = "fault/empty", Digest = Layers.DigestOf(real), Size = 0 } });
            await upload.RequestStream.CompleteAsync();
            var e = await Assert.ThrowsAsync<RpcException>(() => upload.ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        }

        var stored = await Layers.UploadAsync(Server.Client, "fault/empty", real); // the real bytes still go in
        Assert.False(stored.AlreadyExisted);
        Assert.True((await Server.Client.CommitAsync(new CommitRequest { Namespace = "fault/empty", Key = Layers.Key("k"), Layer = Layers.Descriptor(real) })).Created);

        var other = Layers.DigestOf(Layers.Random(5000, 2));
        using var post = await Http.PostAsync($"/v2/fault/empty/blobs/uploads/?digest={other}", new ByteArrayContent([]));
        Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
        Assert.Contains("DIGEST_INVALID", await post.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Null(await StoredSizeAsync("fault/empty", other));
    }

    [Fact]
    public async Task Bytes_that_do_not_match_their_digest_or_size_are_refused_and_store_nothing()
    {
        var data = Layers.Random(300_000, 3);
        var claimed = Layers.DigestOf(Layers.Random(10, 4));
        foreach (var (digest, size) in new[] { (claimed, (long)data.Length), (Layers.DigestOf(data), data.Length - 1L), (Layers.DigestOf(data), data.Length + 1L) })
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(Server.Client, "fault/mismatch", data, digest, size));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        }

        var negative = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(Server.Client, "fault/mismatch", data, size: -1));
        Assert.Equal(StatusCode.InvalidArgument, negative.StatusCode);
        using (var post = await Http.PostAsync($"/v2/fault/mismatch/blobs/uploads/?digest={claimed}", new ByteArrayContent(data)))
        {
            Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
        }

        await foreach (var blob in Store.ListAsync(CancellationToken.None))
        {
            Assert.Fail($"{blob.Namespace} {blob.Digest} was stored; a refused upload must leave nothing");
        }

        Assert.Empty(StagedBlobUploads());
    }

    [Fact]
    public async Task A_grpc_client_that_vanishes_mid_push_leaves_no_blob_and_nothing_staged()
    {
        var data = Layers.Random(4_000_000, 5);
        using (var call = Server.Client.UploadLayer())
        {
            await call.RequestStream.WriteAsync(new UploadLayerRequest
            {
                Header = new UploadHeader { Namespace = "fault/gone", Digest = Layers.DigestOf(data), Size = data.Length, MediaType = Layers.MediaType },
            });
            await call.RequestStream.WriteAsync(new UploadLayerRequest { Chunk = Google.Protobuf.ByteString.CopyFrom(data, 0, 1_000_000) });
        } // disposing the call without completing it cancels it

        Assert.Equal(0, await PollAsync(() => StagedBlobUploads().Length, 0));
        Assert.Null(await StoredSizeAsync("fault/gone", Layers.DigestOf(data)));
        Assert.False((await Layers.UploadAsync(Server.Client, "fault/gone", data)).AlreadyExisted); // the builder pushes again, whole
    }

    [Fact]
    public async Task A_registry_client_that_vanishes_mid_push_leaves_no_blob_no_session_and_no_bytes_of_the_chunk()
    {
        var data = Layers.Random(400_000, 6);
        var digest = Layers.DigestOf(data);
        await Assert.ThrowsAnyAsync<HttpRequestException>(() =>
            Http.PostAsync($"/v2/fault/vanish/blobs/uploads/?digest={digest}", new VanishingContent(data)));

        using var post = await Http.PostAsync("/v2/fault/vanish/blobs/uploads/", null);
        var session = post.Headers.Location!.OriginalString;
        using (var first = await Http.PatchAsync(session, new ByteArrayContent(data[..100_000])))
        {
            Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        }

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Http.PatchAsync(session, new VanishingContent(data[100_000..])));

        // The monolithic push left nothing; the chunked one kept exactly its first chunk, and goes on
        // from there once the server has let go of the broken request (until then it answers 409).
        // (With the object store, the session is there and this replica keeps no file of it.)
        Assert.Equal((int)HttpStatusCode.NoContent, await PollAsync(() => (int)SessionStatus(session), (int)HttpStatusCode.NoContent));
        using (var status = await Http.GetAsync(session))
        {
            Assert.Equal("0-99999", status.Headers.GetValues("Range").Single());
        }

        Assert.True(StagedRegistryUploads() is [] or [_]);
        Assert.All(StagedRegistryUploads(), f => Assert.Equal(100_000, new FileInfo(f).Length));
        Assert.Null(await StoredSizeAsync("fault/vanish", digest));
        using (var resumed = await Http.PutAsync($"{session}?digest={digest}", new ByteArrayContent(data[100_000..])))
        {
            Assert.Equal(HttpStatusCode.Created, resumed.StatusCode);
        }

        Assert.Equal(data, await Http.GetByteArrayAsync($"/v2/fault/vanish/blobs/{digest}"));
        Assert.Empty(StagedRegistryUploads());
        Assert.Equal(HttpStatusCode.NotFound, SessionStatus(session)); // ended wherever it lived
    }

    [Fact]
    public async Task Thirty_two_concurrent_writers_of_one_blob_all_succeed_and_leave_one_whole_copy()
    {
        var data = Layers.Random(1_000_000, 7);
        var digest = Layers.DigestOf(data);
        async Task<string> OverGrpc() => (await Layers.UploadAsync(Server.Client, "fault/many", data)).Layer.Digest;
        var writers = Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? OverGrpc() : Http.PushBlobAsync("fault/many", data));
        Assert.All(await Task.WhenAll(writers), d => Assert.Equal(digest, d));

        Assert.Equal(data, await Layers.DownloadAsync(Server.Client, "fault/many", digest));
        Assert.Equal([(digest, (long)data.Length)], await Store.ListAsync(CancellationToken.None).Select(b => (b.Digest.ToString(), b.Size)).ToListAsync());
        Assert.Empty(StagedBlobUploads());
        Assert.Empty(StagedRegistryUploads());
    }

    [Fact]
    public async Task Thirty_two_concurrent_commits_of_one_key_agree_on_one_winner()
    {
        var layers = Enumerable.Range(0, 32).Select(i => Layers.Random(10_000 + i, 100 + i)).ToArray();
        await Task.WhenAll(layers.Select(data => Layers.UploadAsync(Server.Client, "fault/key", data)));
        var outcomes = await Task.WhenAll(layers.Select(async data =>
            await Server.Client.CommitAsync(new CommitRequest { Namespace = "fault/key", Key = Layers.Key("same"), Layer = Layers.Descriptor(data) })));

        var winner = Assert.Single(outcomes, o => o.Created).Layer;
        Assert.All(outcomes, o => Assert.Equal(winner, o.Layer));
        var lookup = await Server.Client.LookupAsync(new LookupRequest { Namespace = "fault/key", Key = Layers.Key("same") });
        Assert.Equal(winner, lookup.Layer);
        Assert.Equal(layers.Single(l => Layers.DigestOf(l) == winner.Digest), await Layers.DownloadAsync(Server.Client, "fault/key", winner.Digest));
    }

    [Fact]
    public async Task A_corrupt_blob_is_never_sent_whole_with_a_success_status_and_is_purged_over_either_transport()
    {
        await UseServerAsync(await StartServerAsync("--CacheService:Integrity:VerifiedRegistryReads=1")); // every registry read verified, as gRPC's are
        var pushed = Layers.Random(2_000_000, 8); // several chunks: the first ones go out before the end is known
        var digest = await Http.PushBlobAsync("fault/corrupt", pushed);
        var uploaded = Layers.Random(2_000_000, 9);
        var layer = await Layers.UploadAndCommitAsync(Server.Client, "fault/corrupt", "k", uploaded);
        await CorruptAsync("fault/corrupt", digest);
        await CorruptAsync("fault/corrupt", layer.Digest);

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Http.GetByteArrayAsync($"/v2/fault/corrupt/blobs/{digest}")); // cut short, never a 200 with every byte
        using (var again = await Http.GetAsync($"/v2/fault/corrupt/blobs/{digest}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        }

        var received = 0L;
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var call = Server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "fault/corrupt", Digest = layer.Digest });
            await foreach (var message in call.ResponseStream.ReadAllAsync())
            {
                received += message.Chunk.Length;
            }
        });
        Assert.Equal(StatusCode.DataLoss, e.StatusCode);
        Assert.True(received < uploaded.Length, $"all {received} bytes were sent before the corruption was reported");

        // Both are purged: the key misses, and the builder's rebuilt bytes are accepted, not "already stored".
        Assert.False(await Hit("fault/corrupt", "k"));
        Assert.Null(await StoredSizeAsync("fault/corrupt", layer.Digest));
        Assert.False((await Layers.UploadAsync(Server.Client, "fault/corrupt", uploaded)).AlreadyExisted);
        Assert.Equal(digest, await Http.PushBlobAsync("fault/corrupt", pushed));
    }

    [Fact]
    public async Task A_corrupt_blob_sent_as_stored_fails_the_clients_digest_check_and_the_scrubber_purges_it()
    {
        await UseServerAsync(await StartServerAsync("--CacheService:Integrity:VerifiedRegistryReads=0"));
        var (manifest, _) = await Http.PushImageAsync("fault/rot", "step", seed: 16, layerBytes: 300_000);
        var rotten = JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        var kept = await Layers.UploadAndCommitAsync(Server.Client, "fault/rot", "k", Layers.Random(200_000, 17));
        await CorruptAsync("fault/rot", rotten);

        // Unverified, the bytes go out as stored: what a registry client's own digest check refuses.
        var served = await Http.GetByteArrayAsync($"/v2/fault/rot/blobs/{rotten}");
        Assert.Equal(300_000, served.Length);
        Assert.NotEqual(rotten, Layers.DigestOf(served));
        Assert.Equal(0, await Server.MetricAsync("cacheservice_verified_bytes_total{check=\"read\"}"));

        // One scrub round (the default budget covers every blob here) finds it and purges it with the tag that named it.
        await Server.RunPeriodicWorkAsync("blob scrub", 1, TimeSpan.FromSeconds(10));
        Assert.Equal(1, await Server.MetricAsync("cacheservice_corrupt_blobs_total{check=\"scrub\"}"));
        Assert.True(await Server.MetricAsync("cacheservice_verified_bytes_total{check=\"scrub\"}") >= 500_000);
        Assert.Null(await StoredSizeAsync("fault/rot", rotten));
        using (var pull = await Http.GetAsync("/v2/fault/rot/manifests/step"))
        {
            Assert.Equal(HttpStatusCode.NotFound, pull.StatusCode); // the next build misses and pushes again
        }

        Assert.True(await Hit("fault/rot", "k")); // what was intact stays
        Assert.Equal(200_000, await StoredSizeAsync("fault/rot", kept.Digest));
    }

    [Fact]
    public async Task A_ranged_read_of_a_corrupt_blob_answers_data_loss_and_purges_it()
    {
        var data = Layers.Random(400_000, 10);
        var layer = await Layers.UploadAndCommitAsync(Server.Client, "fault/ranged", "k", data);
        await CorruptAsync("fault/ranged", layer.Digest);

        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(Server.Client, "fault/ranged", layer.Digest, offset: 100));
        Assert.Equal(StatusCode.DataLoss, e.StatusCode);
        Assert.False(await Hit("fault/ranged", "k"));
        Assert.Null(await StoredSizeAsync("fault/ranged", layer.Digest));
    }

    [Fact]
    public async Task A_blob_deleted_behind_the_index_repairs_it_over_either_transport_so_the_next_pull_misses_and_rebuilds()
    {
        var layer = await Layers.UploadAndCommitAsync(Server.Client, "fault/missing", "k", Layers.Random(5000, 11));
        var (manifest, _) = await Http.PushImageAsync("fault/missing", "step", seed: 12);
        var tagged = JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        await Store.DeleteAsync("fault/missing", Digest.Parse(layer.Digest, "digest"), CancellationToken.None);
        await Store.DeleteAsync("fault/missing", Digest.Parse(tagged, "digest"), CancellationToken.None);

        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(Server.Client, "fault/missing", layer.Digest));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.False(await Hit("fault/missing", "k"));

        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync($"/v2/fault/missing/blobs/{tagged}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync("/v2/fault/missing/manifests/step")).StatusCode); // a clean miss, not a manifest without bytes
    }

    [Fact]
    public async Task Eviction_and_collection_during_a_download_in_flight_neither_mix_bytes_nor_leave_a_hit_without_bytes()
    {
        var data = Layers.Random(8_000_000, 13);
        var layer = await Layers.UploadAndCommitAsync(Server.Client, "fault/race", "k", data);
        using var call = Server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "fault/race", Digest = layer.Digest });
        using var received = new MemoryStream();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        call.ResponseStream.Current.Chunk.WriteTo(received);

        // The entry goes and its blob is collected with no grace at all while the bytes are still flowing.
        await Server.Client.DeleteAsync(new DeleteRequest { Namespace = "fault/race", Keys = { Layers.Key("k") } });
        Assert.Equal(1, await Server.Services.GetRequiredService<BlobCollector>().CollectOnceAsync(TimeSpan.Zero, CancellationToken.None));
        Assert.Null(await StoredSizeAsync("fault/race", layer.Digest));

        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            message.Chunk.WriteTo(received);
        }

        Assert.Equal(data, received.ToArray()); // the read already open went to its end: the same bytes, whole
        Assert.False(await Hit("fault/race", "k"));
        var gone = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(Server.Client, "fault/race", layer.Digest));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task A_tiny_deadline_on_a_256_MiB_pull_stops_the_work_and_leaves_no_read_open()
    {
        const long Size = 256L << 20;
        var digest = GeneratedBlobStream.DigestOf(Size).Value;
        using (var push = await Http.PostAsync($"/v2/fault/big/blobs/uploads/?digest={digest}", new StreamContent(new GeneratedBlobStream(Size))))
        {
            Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        }

        for (var i = 0; i < 5; i++)
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () =>
            {
                using var call = Server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "fault/big", Digest = digest }, deadline: DateTime.UtcNow.AddMilliseconds(50));
                await foreach (var _ in call.ResponseStream.ReadAllAsync())
                {
                }
            });
            // The server ends the call at the same deadline and may reset the stream first: the
            // client then reports the reset (UNAVAILABLE, or CANCELLED for an HTTP/2 CANCEL)
            // rather than its own deadline. Nothing here cancels the call but the deadline.
            Assert.True(e.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Unavailable or StatusCode.Cancelled, e.Status.ToString());
        }

        Assert.Equal(0, await PollAsync(() => ReadsLeftOpen("fault/big", digest), 0)); // the server stopped reading
        using var whole = Server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "fault/big", Digest = digest });
        var received = 0L;
        await foreach (var message in whole.ResponseStream.ReadAllAsync())
        {
            received += message.Chunk.Length;
        }

        Assert.Equal(Size, received);
    }

    [Fact]
    public async Task The_storage_ceiling_refuses_with_RESOURCE_EXHAUSTED_and_stores_nothing_until_room_is_made()
    {
        await UseServerAsync(await StartServerAsync("--CacheService:Limits:StorageCeilingBytes=1000000"));
        const string Sample = "namespace sample";
        await Server.RunPeriodicWorkAsync(Sample, 1, TimeSpan.FromSeconds(1));

        await Layers.UploadAndCommitAsync(Server.Client, "fault/ceiling", "first", Layers.Random(600_000, 14));
        var second = Layers.Random(600_000, 15);
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(Server.Client, "fault/other", second));
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.Contains("StorageCeilingBytes", e.Status.Detail, StringComparison.Ordinal);
        using (var pushed = await Http.PostAsync($"/v2/fault/other/blobs/uploads/?digest={Layers.DigestOf(second)}", new ByteArrayContent(second)))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, pushed.StatusCode);
        }

        Assert.Null(await StoredSizeAsync("fault/other", Layers.DigestOf(second)));
        Assert.Equal(2, await Server.MetricAsync("cacheservice_refusals_total{reason=\"storage_ceiling\"}"));

        await Server.RunPeriodicWorkAsync(Sample, Server.Rounds(Sample) + 1, TimeSpan.FromSeconds(1)); // the index now says 600,000 stored: still no room
        await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(Server.Client, "fault/other", second));

        await Server.Client.DeleteAsync(new DeleteRequest { Namespace = "fault/ceiling", All = true });
        await Server.RunPeriodicWorkAsync(Sample, Server.Rounds(Sample) + 1, TimeSpan.FromSeconds(1));
        Assert.False((await Layers.UploadAsync(Server.Client, "fault/other", second)).AlreadyExisted);
    }

    /// <summary>Reads <paramref name="read"/> until it gives <paramref name="expected"/>, for up to five seconds.</summary>
    protected static async Task<int> PollAsync(Func<int> read, int expected)
    {
        var value = read();
        for (var attempt = 0; attempt < 200 && value != expected; attempt++)
        {
            await Task.Delay(25);
            value = read();
        }

        return value;
    }

    private HttpStatusCode SessionStatus(string session)
    {
        using var status = Http.Send(new HttpRequestMessage(HttpMethod.Get, session));
        return status.StatusCode;
    }

    /// <summary>A body that sends its first half, then fails: the client gives up mid-request.</summary>
    private sealed class VanishingContent(byte[] data) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await stream.WriteAsync(data.AsMemory(0, data.Length / 2));
            await stream.FlushAsync();
            throw new IOException("the client went away");
        }

        protected override bool TryComputeLength(out long length)
        {
            length = data.Length;
            return true;
        }
    }
}
