using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;

namespace CacheService.Server.Tests;

/// <summary>Bad input gets INVALID_ARGUMENT naming the field, and loses nothing already stored.</summary>
public sealed class ValidationTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string GoodNs = "valid/ns";
    private static readonly string GoodKey = Layers.Key("good");
    private readonly LayerCache.LayerCacheClient _client = fixture.Server.Client;

    public static TheoryData<string, string> LookupCases() => new()
    {
        { "namespace", "" },
        { "namespace", "Upper/Case" },
        { "namespace", "a/b/c/d/e" },
        { "namespace", "../escape" },
        { "key", "sha256:short" },
        { "key", "md5:d41d8cd98f00b204e9800998ecf8427e" },
        { "key", GoodKey.ToUpperInvariant() },
        { "fallback_namespaces[0]", "bad namespace" },
    };

    [Theory]
    [MemberData(nameof(LookupCases))]
    public async Task Lookup_names_the_bad_field(string field, string value)
    {
        var request = new LookupRequest { Namespace = GoodNs, Key = GoodKey };
        switch (field)
        {
            case "namespace": request.Namespace = value; break;
            case "key": request.Key = value; break;
            default: request.FallbackNamespaces.Add(value); break;
        }

        await AssertInvalid(field, async () => await _client.LookupAsync(request));
    }

    [Theory]
    [InlineData("layer.digest")]
    [InlineData("layer.diff_id")]
    [InlineData("layer.size")]
    [InlineData("layer.media_type")]
    [InlineData("layer")]
    [InlineData("key")]
    public async Task Commit_names_the_bad_field(string field)
    {
        var layer = Layers.Descriptor([1, 2, 3]);
        switch (field)
        {
            case "layer.digest": layer.Digest = "sha256:nothex"; break;
            case "layer.diff_id": layer.DiffId = ""; break;
            case "layer.size": layer.Size = -1; break;
            case "layer.media_type": layer.MediaType = " "; break;
        }

        var request = new CommitRequest { Namespace = GoodNs, Key = field == "key" ? "nope" : GoodKey, Layer = field == "layer" ? null : layer };
        await AssertInvalid(field, async () => await _client.CommitAsync(request));
    }

    [Fact]
    public async Task Upload_names_the_bad_header_fields()
    {
        await AssertInvalid("header.namespace", () => Layers.UploadAsync(_client, "BAD", [1]));
        await AssertInvalid("header.digest", () => Layers.UploadAsync(_client, GoodNs, [1], digest: "sha256:00"));
        await AssertInvalid("header.size", () => Layers.UploadAsync(_client, GoodNs, [1], size: -5));
    }

    [Fact]
    public async Task Upload_without_a_header_is_refused()
    {
        using var call = _client.UploadLayer();
        await call.RequestStream.WriteAsync(new UploadLayerRequest { Chunk = Google.Protobuf.ByteString.CopyFrom(1, 2) });
        await call.RequestStream.CompleteAsync();
        await AssertInvalid("header", async () => await call);
    }

    [Fact]
    public async Task Download_names_the_bad_fields()
    {
        await AssertInvalid("digest", () => Layers.DownloadAsync(_client, GoodNs, "sha256:zz"));
        await AssertInvalid("namespace", () => Layers.DownloadAsync(_client, "", GoodKey));
        var data = Layers.Random(100, seed: 1);
        await Layers.UploadAsync(_client, GoodNs, data);
        await AssertInvalid("offset", () => Layers.DownloadAsync(_client, GoodNs, Layers.DigestOf(data), offset: -1));
        await AssertInvalid("offset", () => Layers.DownloadAsync(_client, GoodNs, Layers.DigestOf(data), offset: 101));
    }

    [Fact]
    public async Task ComputeKey_and_ResolveChain_name_the_bad_fields()
    {
        var parent = Layers.DigestOf([1]);
        await AssertInvalid("parent_state", async () => await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = "x", Platform = "linux/amd64", Step = new StepInput { Instruction = "RUN x" } }));
        await AssertInvalid("platform", async () => await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux", Step = new StepInput { Instruction = "RUN x" } }));
        await AssertInvalid("step.instruction", async () => await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux/amd64", Step = new StepInput { Instruction = "  " } }));
        await AssertInvalid("step", async () => await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux/amd64" }));
        await AssertInvalid("steps[1].sources_digest", async () => await _client.ResolveChainAsync(new ResolveChainRequest
        {
            Namespace = GoodNs,
            BaseState = parent,
            Platform = "linux/amd64",
            Steps = { new StepInput { Instruction = "ENV A=1" }, new StepInput { Instruction = "COPY a b", SourcesDigest = "sha256:1" } },
        }));
        await AssertInvalid("steps[0].args", async () => await _client.ResolveChainAsync(new ResolveChainRequest
        {
            Namespace = GoodNs,
            BaseState = parent,
            Platform = "linux/amd64",
            Steps = { new StepInput { Instruction = "RUN x", Args = { new BuildArg { Name = "A" }, new BuildArg { Name = "A" } } } },
        }));
        await AssertInvalid("base_state", async () => await _client.ResolveChainAsync(new ResolveChainRequest { Namespace = GoodNs, Platform = "linux/amd64" }));
    }

    [Fact]
    public async Task An_instruction_over_the_limit_is_refused()
    {
        var huge = "RUN " + new string('x', 70_000);
        await AssertInvalid("step.instruction", async () => await _client.ComputeKeyAsync(new ComputeKeyRequest
        {
            ParentState = Layers.DigestOf([1]),
            Platform = "linux/amd64",
            Step = new StepInput { Instruction = huge },
        }));
    }

    [Fact]
    public async Task Delete_needs_keys_or_all_but_not_both()
    {
        await AssertInvalid("keys", async () => await _client.DeleteAsync(new DeleteRequest { Namespace = GoodNs }));
        await AssertInvalid("keys", async () => await _client.DeleteAsync(new DeleteRequest { Namespace = GoodNs, All = true, Keys = { GoodKey } }));
        await AssertInvalid("keys[1]", async () => await _client.DeleteAsync(new DeleteRequest { Namespace = GoodNs, Keys = { GoodKey, "bad" } }));
    }

    [Fact]
    public async Task Bad_input_loses_nothing_already_stored()
    {
        const string ns = "valid/kept";
        var layer = await Layers.UploadAndCommitAsync(_client, ns, "kept", Layers.Random(1000, seed: 2));
        await Assert.ThrowsAsync<RpcException>(async () => await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = Layers.Key("kept"), Layer = new LayerDescriptor() }));
        await Assert.ThrowsAsync<RpcException>(async () => await _client.DeleteAsync(new DeleteRequest { Namespace = ns, Keys = { Layers.Key("kept"), "bad" } }));
        Assert.Equal(layer, (await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("kept") })).Layer);
    }

    private static async Task AssertInvalid(string field, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith(field + ":", e.Status.Detail, StringComparison.Ordinal);
    }
}
