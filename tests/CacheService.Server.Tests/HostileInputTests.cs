using System.Net;
using System.Text;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Blobs.FileSystem;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Registry;
using CacheService.Testing;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Server.Tests;

/// <summary>
/// Findings of the hostile review (issue 13) that concern input rather than an engine: garbage
/// manifests and protobuf, hostile pages, offsets and names, and a second server on one data
/// directory. The findings an engine must hold (bad digests, rotten or missing blobs) are in the
/// fault catalogue, which runs on both engine pairs.
/// </summary>
public sealed class HostileInputTests : EmbeddedServerTests
{
    [Theory]
    [InlineData("[]")]
    [InlineData("\"a string\"")]
    [InlineData("{\"layers\": 5}")]
    [InlineData("{\"config\": \"sha256:x\"}")]
    [InlineData("{\"layers\": [1]}")]
    [InlineData("{\"layers\": [{\"digest\": 7}]}")]
    [InlineData("{\"manifests\": {}}")]
    [InlineData("{\"mediaType\": 5, \"layers\": [{}]}")]
    [InlineData("not json")]
    public async Task A_garbage_manifest_is_refused_as_invalid_not_as_a_server_fault(string body)
    {
        using var response = await Http.PutManifestAsync("hostile/garbage", "t", Encoding.UTF8.GetBytes(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("MANIFEST_INVALID", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_empty_tag_page_is_an_empty_answer()
    {
        await Http.PushBlobAsync("hostile/tags", [1, 2, 3]);
        using var response = await Http.GetAsync("/v2/hostile/tags/tags/list?n=0");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("tags").GetArrayLength());
    }

    [Fact]
    public async Task A_tag_page_as_large_as_an_int_is_capped_not_overflowed()
    {
        await Http.PushImageAsync("hostile/pages", "only", seed: 9);
        using var response = await Http.GetAsync($"/v2/hostile/pages/tags/list?n={int.MaxValue}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tags = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("tags");
        Assert.Equal(["only"], tags.EnumerateArray().Select(t => t.GetString()));
        using var negative = await Http.GetAsync("/v2/hostile/pages/tags/list?n=-1"); // no limit asked: the default page
        Assert.Equal(1, JsonDocument.Parse(await negative.Content.ReadAsStringAsync()).RootElement.GetProperty("tags").GetArrayLength());
    }

    [Fact]
    public async Task A_tag_whose_entry_is_no_manifest_is_not_read_into_memory()
    {
        var big = Layers.Random(OciRegistry.MaxManifestBytes + 1, 6);
        await Layers.UploadAsync(Server.Client, "hostile/big", big);
        var layer = Layers.Descriptor(big);
        await Server.Client.CommitAsync(new CommitRequest { Namespace = "hostile/big", Key = OciRegistry.TagKey("huge").Value, Layer = layer });

        using var head = await Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/v2/hostile/big/manifests/huge"));
        Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
    }

    [Fact]
    public async Task An_upload_that_stops_sending_is_abandoned_after_the_idle_timeout_and_leaves_nothing_staged()
    {
        var data = Layers.Random(100_000, 8);
        using var upload = Server.Client.UploadLayer();
        await upload.RequestStream.WriteAsync(new UploadLayerRequest { Header = new UploadHeader { Namespace = "hostile/idle", Digest = Layers.DigestOf(data), Size = data.Length } });
        await upload.RequestStream.WriteAsync(new UploadLayerRequest { Chunk = Google.Protobuf.ByteString.CopyFrom(data, 0, 1000) });

        // The client now sends nothing; the server's idle clock (the test's) runs on.
        for (var i = 0; i < 200 && !upload.ResponseAsync.IsCompleted; i++)
        {
            Server.Time.Advance(TimeSpan.FromSeconds(30));
            await Task.Delay(25);
        }

        Assert.True(upload.ResponseAsync.IsCompleted, "the server kept waiting for the abandoned upload");
        var e = await Assert.ThrowsAsync<RpcException>(() => upload.ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith("chunk:", e.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.Combine(Server.DataDirectory, "blobs", ".uploads")));
        Assert.Null((await Server.Client.StatLayersAsync(new StatLayersRequest { Namespace = "hostile/idle", Digests = { Layers.DigestOf(data) } })).Present.FirstOrDefault());
    }

    [Fact]
    public async Task A_namespace_shaped_like_another_namespaces_blob_path_is_refused_and_cannot_block_that_blob()
    {
        var data = Layers.Random(3000, 9);
        var hex = Layers.DigestOf(data)["sha256:".Length..];
        var squatter = $"x/blobs/sha256/{hex}";
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(Server.Client, squatter, Layers.Random(10, 10)));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        using (var post = await Http.PostAsync($"/v2/{squatter}/blobs/uploads/", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, post.StatusCode);
            Assert.Contains("NAME_INVALID", await post.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.False((await Layers.UploadAsync(Server.Client, "x", data)).AlreadyExisted);
        Assert.Equal(data, await Layers.DownloadAsync(Server.Client, "x", Layers.DigestOf(data)));
    }

    [Fact]
    public async Task Bytes_that_are_not_protobuf_are_refused_as_a_bad_argument_not_a_server_fault()
    {
        byte[] garbage = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        Assert.Equal(StatusCode.InvalidArgument, await RawCallAsync("Lookup", garbage));
        var header = new UploadLayerRequest { Header = new UploadHeader { Namespace = "hostile/garbage", Digest = Layers.DigestOf([1]), Size = 1 } }.ToByteArray();
        Assert.Equal(StatusCode.InvalidArgument, await RawCallAsync("UploadLayer", header, garbage)); // a good first message, then garbage
        Assert.Equal(StatusCode.InvalidArgument, await RawCallAsync("ComputeKey", [0x0A, 0x02, 0xC3, 0x28])); // parent_state: bytes that are not UTF-8
    }

    [Theory]
    [InlineData("RUN [\"\\ud800\"]")] // a lone surrogate escape in exec form
    [InlineData("RUN a\\\n\\\n\\\nb")] // continuations only
    [InlineData("COPY --chmod=77777777777777777777 a /")]
    [InlineData("RUN ${A:}")]
    public async Task ComputeKey_answers_a_hostile_instruction_with_a_key_or_a_bad_argument_never_a_fault(string instruction)
    {
        try
        {
            var key = await Server.Client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = Layers.DigestOf([1]), Platform = "linux/amd64", Step = new StepInput { Instruction = instruction } });
            Assert.StartsWith("sha256:", key.Key, StringComparison.Ordinal);
        }
        catch (RpcException e)
        {
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        }
    }

    [Fact]
    public async Task An_offset_past_the_end_is_refused_without_reading_the_blob()
    {
        var opens = 0;
        await using var server = await TestServer.StartAsync(services => services.AddSingleton<IBlobStore>(sp =>
            new CountingStore(sp.GetRequiredService<FileSystemBlobStore>(), () => Interlocked.Increment(ref opens))));
        var data = Layers.Random(100_000, 11);
        await Layers.UploadAsync(server.Client, "hostile/offset", data);

        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(server.Client, "hostile/offset", Layers.DigestOf(data), offset: 100_001));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal(0, opens);
        Assert.Empty(await Layers.DownloadAsync(server.Client, "hostile/offset", Layers.DigestOf(data), offset: 100_000)); // the very end is still a valid resume
    }

    [Fact]
    public async Task A_manifest_naming_one_layer_a_thousand_times_stats_it_once_and_one_naming_too_many_blobs_is_refused()
    {
        var stats = 0;
        await using var server = await TestServer.StartAsync(services => services.AddSingleton<IBlobStore>(sp =>
            new CountingStore(sp.GetRequiredService<FileSystemBlobStore>(), () => { }, () => Interlocked.Increment(ref stats))));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        var config = await http.PushBlobAsync("hostile/repeat", Layers.Random(100, 12));
        var layer = await http.PushBlobAsync("hostile/repeat", Layers.Random(1000, 13));

        var before = stats;
        var repeated = OciImages.Manifest(config, 100, [.. Enumerable.Repeat((layer, 1000), 1000)]);
        using (var put = await http.PutManifestAsync("hostile/repeat", "v1", repeated))
        {
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        }

        Assert.True(stats - before < 10, $"{stats - before} stats for two distinct blobs");

        var tooMany = OciImages.Manifest(config, 100, [.. Enumerable.Range(0, OciRegistry.MaxBlobsPerManifest + 1).Select(i => (Layers.DigestOf(BitConverter.GetBytes(i)), 1))]);
        using var refused = await http.PutManifestAsync("hostile/repeat", "v2", tooMany);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("MANIFEST_INVALID", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_second_server_on_the_same_data_directory_refuses_to_start_and_touches_nothing()
    {
        var session = await Http.PostAsync("/v2/hostile/shared/blobs/uploads/", null);
        var staged = Directory.GetFiles(Path.Combine(Server.DataDirectory, "registry-uploads"));

        var e = await Assert.ThrowsAsync<CacheService.Server.Hosting.StartupException>(() => TestServer.StartAsync($"--CacheService:Storage:DataDirectory={Server.DataDirectory}"));
        Assert.Contains("in use by another CacheService process", e.Message, StringComparison.Ordinal);

        Assert.Equal(staged, Directory.GetFiles(Path.Combine(Server.DataDirectory, "registry-uploads"))); // the first one's staging is still there
        using var status = await Http.GetAsync(session.Headers.Location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        session.Dispose();
    }

    [Fact]
    public async Task A_media_type_of_megabytes_is_refused_naming_the_field_and_the_index_keeps_nothing()
    {
        var data = Layers.Random(1000, 14);
        await Layers.UploadAsync(Server.Client, "hostile/media", data);
        var layer = Layers.Descriptor(data);
        layer.MediaType = "application/" + new string('x', 1 << 20);
        var e = await Assert.ThrowsAsync<RpcException>(async () => await Server.Client.CommitAsync(new CommitRequest { Namespace = "hostile/media", Key = Layers.Key("k"), Layer = layer }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith("layer.media_type:", e.Status.Detail, StringComparison.Ordinal);
        Assert.False((await Server.Client.LookupAsync(new LookupRequest { Namespace = "hostile/media", Key = Layers.Key("k") })).Hit);
    }

    // One gRPC call made by hand over HTTP/2, with the given messages framed as they are; returns its status.
    private async Task<StatusCode> RawCallAsync(string method, params byte[][] messages)
    {
        using var body = new MemoryStream();
        foreach (var message in messages)
        {
            body.WriteByte(0); // not compressed
            body.Write([(byte)(message.Length >> 24), (byte)(message.Length >> 16), (byte)(message.Length >> 8), (byte)message.Length]);
            body.Write(message);
        }

        using var h2 = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"{Server.GrpcAddress}/cacheservice.v1.LayerCache/{method}")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body.ToArray()),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("TE", "trailers");
        using var response = await h2.SendAsync(request);
        await response.Content.ReadAsByteArrayAsync();
        var status = response.TrailingHeaders.TryGetValues("grpc-status", out var trailer) ? trailer.Single() : response.Headers.GetValues("grpc-status").Single();
        return (StatusCode)int.Parse(status, System.Globalization.CultureInfo.InvariantCulture);
    }

    private sealed class CountingStore(IBlobStore inner, Action opened, Action? sized = null) : BlobStoreDecorator(inner)
    {
        public override Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
        {
            opened();
            return base.OpenReadAsync(ns, digest, offset, cancellationToken);
        }

        public override Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken)
        {
            sized?.Invoke();
            return base.GetSizeAsync(ns, digest, cancellationToken);
        }
    }
}
