using System.Net;
using CacheService.Api.V1;
using CacheService.Core.Blobs;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Server.Tests;

/// <summary>
/// The fault catalogue (DESIGN §5, issue 13) on the embedded engines: clients that vanish mid-push,
/// many writers of one blob, a deadline far shorter than a pull, and eviction and collection
/// while a download is in flight. Each must leave the cache whole: no partial blob, no leftover
/// file or handle, no mixed bytes, no hit without bytes.
/// </summary>
public sealed class FaultCatalogueTests : EmbeddedServerTests
{
    private string[] StagedUploads() => Directory.GetFiles(Path.Combine(Server.DataDirectory, "registry-uploads"));

    [Fact]
    public async Task A_registry_client_that_vanishes_mid_push_leaves_no_blob_no_session_and_no_bytes_of_the_chunk()
    {
        var data = Layers.Random(400_000, 1);
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
        Assert.Equal((long)HttpStatusCode.NoContent, await PollAsync(() => (long)SessionStatus(session), (long)HttpStatusCode.NoContent));
        Assert.Equal(100_000, new FileInfo(StagedUploads().Single()).Length);
        using (var resumed = await Http.PutAsync($"{session}?digest={digest}", new ByteArrayContent(data[100_000..])))
        {
            Assert.Equal(HttpStatusCode.Created, resumed.StatusCode);
        }

        Assert.Equal(data, await Http.GetByteArrayAsync($"/v2/fault/vanish/blobs/{digest}"));
        Assert.Empty(StagedUploads());
    }

    [Fact]
    public async Task Thirty_two_concurrent_writers_of_one_blob_all_succeed_and_leave_one_whole_copy()
    {
        var data = Layers.Random(1_000_000, 2);
        var digest = Layers.DigestOf(data);
        async Task<string> OverGrpc() => (await Layers.UploadAsync(Server.Client, "fault/many", data)).Layer.Digest;
        var writers = Enumerable.Range(0, 32).Select(i => i % 2 == 0 ? OverGrpc() : Http.PushBlobAsync("fault/many", data));
        Assert.All(await Task.WhenAll(writers), d => Assert.Equal(digest, d));

        Assert.Equal(data, await File.ReadAllBytesAsync(Server.BlobPath("fault/many", digest)));
        Assert.Empty(Directory.GetFiles(Path.Combine(Server.DataDirectory, "blobs", ".uploads")));
        Assert.Empty(StagedUploads());
    }

    [Fact]
    public async Task A_tiny_deadline_on_a_256_MiB_pull_stops_the_work_and_keeps_no_handle_open()
    {
        const long Size = 256L << 20;
        var digest = GeneratedBlobStream.DigestOf(Size).Value;
        using (var push = await Http.PostAsync($"/v2/fault/big/blobs/uploads/?digest={digest}", new StreamContent(new GeneratedBlobStream(Size))))
        {
            Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        }

        var path = Server.BlobPath("fault/big", digest);
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
            // client then reports the reset (UNAVAILABLE) rather than its own deadline.
            Assert.True(e.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Unavailable, e.Status.ToString());
        }

        Assert.Equal(0, await PollAsync(() => OpenHandles(path), 0)); // the server stopped reading: every handle on the blob closed
        using var whole = Server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "fault/big", Digest = digest });
        var received = 0L;
        await foreach (var message in whole.ResponseStream.ReadAllAsync())
        {
            received += message.Chunk.Length;
        }

        Assert.Equal(Size, received);
    }

    [Fact]
    public async Task Eviction_and_collection_during_a_download_in_flight_neither_mix_bytes_nor_leave_a_hit_without_bytes()
    {
        var data = Layers.Random(8_000_000, 3);
        var layer = await Layers.UploadAndCommitAsync(Server.Client, "fault/race", "k", data);
        using var call = Server.Client.DownloadLayer(new DownloadLayerRequest { Namespace = "fault/race", Digest = layer.Digest });
        using var received = new MemoryStream();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        call.ResponseStream.Current.Chunk.WriteTo(received);

        // The entry goes and its blob is collected with no grace at all while the bytes are still flowing.
        await Server.Client.DeleteAsync(new DeleteRequest { Namespace = "fault/race", Keys = { Layers.Key("k") } });
        Assert.Equal(1, await Server.Services.GetRequiredService<BlobCollector>().CollectOnceAsync(TimeSpan.Zero, CancellationToken.None));
        Assert.False(File.Exists(Server.BlobPath("fault/race", layer.Digest)));

        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            message.Chunk.WriteTo(received);
        }

        Assert.Equal(data, received.ToArray()); // the open file was read to its end: the same bytes, whole
        Assert.False((await Server.Client.LookupAsync(new LookupRequest { Namespace = "fault/race", Key = Layers.Key("k") })).Hit);
        var gone = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(Server.Client, "fault/race", layer.Digest));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    private HttpStatusCode SessionStatus(string session)
    {
        using var status = Http.Send(new HttpRequestMessage(HttpMethod.Get, session));
        return status.StatusCode;
    }

    // Handles this process holds on the file (the server runs in this process).
    private static int OpenHandles(string path) =>
        new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(fd => fd.LinkTarget == path);

    private static async Task<long> PollAsync(Func<long> read, long expected)
    {
        var value = read();
        for (var attempt = 0; attempt < 200 && value != expected; attempt++)
        {
            await Task.Delay(25);
            value = read();
        }

        return value;
    }

    /// <summary>A body that sends its first half, then fails: the client gives up mid-request.</summary>
    private sealed class VanishingContent(byte[] data) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
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
