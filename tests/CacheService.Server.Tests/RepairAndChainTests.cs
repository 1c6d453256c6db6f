using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;

namespace CacheService.Server.Tests;

/// <summary>ResolveChain walks steps server-side; broken blobs repair the index instead of breaking builds.</summary>
public sealed class RepairAndChainTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Platform = "linux/amd64";
    private static readonly string Base = Layers.DigestOf([7, 7, 7]);
    private readonly LayerCache.LayerCacheClient _client = fixture.Server.Client;

    [Fact]
    public async Task ResolveChain_returns_the_longest_cached_prefix_in_one_call()
    {
        const string ns = "chain/main";
        StepInput copy = new() { Instruction = "COPY app /app", SourcesDigest = Layers.DigestOf([1]) };
        StepInput env = new() { Instruction = "ENV MODE=release" };
        StepInput build = new() { Instruction = "RUN make", Args = { new BuildArg { Name = "VERSION", Value = "1" } } };
        StepInput test = new() { Instruction = "RUN make test" };
        var request = new ResolveChainRequest { Namespace = ns, BaseState = Base, Platform = Platform, Steps = { copy, env, build, test } };

        var cold = await _client.ResolveChainAsync(request);
        Assert.Equal(0, cold.CachedSteps);
        Assert.Equal([StepStatus.Miss, StepStatus.Pending, StepStatus.Pending, StepStatus.Pending], cold.Steps.Select(s => s.Status));

        // The builder runs COPY, commits it under the key ResolveChain reported, and asks again.
        var copyKey = cold.Steps[0].Key;
        Assert.Equal(copyKey, (await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = Base, Platform = Platform, Step = copy })).Key);
        await CommitStep(ns, copyKey, Layers.Random(1000, 1));

        var warm = await _client.ResolveChainAsync(request);
        Assert.Equal([StepStatus.Hit, StepStatus.Config, StepStatus.Miss, StepStatus.Pending], warm.Steps.Select(s => s.Status));
        Assert.Equal(2, warm.CachedSteps);
        Assert.Equal(ns, warm.Steps[0].Namespace);
        Assert.Equal("", warm.Steps[3].Key);

        // The MISS key is the one a client computes from the state after the ENV step.
        var buildKey = (await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = warm.Steps[1].State, Platform = Platform, Step = build })).Key;
        Assert.Equal(buildKey, warm.Steps[2].Key);
        await CommitStep(ns, buildKey, Layers.Random(1000, 2));

        var hotter = await _client.ResolveChainAsync(request);
        Assert.Equal(3, hotter.CachedSteps);
        Assert.Equal(StepStatus.Miss, hotter.Steps[3].Status);

        // A different build arg changes the RUN key, so the chain stops there again.
        var otherArg = request.Clone();
        otherArg.Steps[2].Args[0].Value = "2";
        Assert.Equal(2, (await _client.ResolveChainAsync(otherArg)).CachedSteps);

        var stats = await _client.GetStatsAsync(new GetStatsRequest { Namespace = ns });
        Assert.Equal((8L, 4L), (stats.Lookups, stats.Hits)); // 1 + 2 + 3 + 2 layer lookups, 0 + 1 + 2 + 1 hits
    }

    [Fact]
    public async Task A_blob_deleted_behind_the_index_answers_not_found_and_repairs_the_index()
    {
        const string ns = "repair/missing";
        var layer = await Layers.UploadAndCommitAsync(_client, ns, "k", Layers.Random(5000, 3));
        File.Delete(fixture.Server.BlobPath(ns, layer.Digest));

        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(_client, ns, layer.Digest));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.False((await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("k") })).Hit);
    }

    [Fact]
    public async Task Corrupt_blob_bytes_answer_data_loss_and_purge_the_entry_and_the_blob()
    {
        const string ns = "repair/corrupt";
        var data = Layers.Random(400_000, 4);
        var layer = await Layers.UploadAndCommitAsync(_client, ns, "k", data);
        var path = fixture.Server.BlobPath(ns, layer.Digest);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[300_000] ^= 0xFF;
        await File.WriteAllBytesAsync(path, bytes);

        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(_client, ns, layer.Digest, offset: 100));
        Assert.Equal(StatusCode.DataLoss, e.StatusCode);
        Assert.False((await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("k") })).Hit);
        Assert.False(File.Exists(path));

        // The builder rebuilds and uploads the right bytes again; they are accepted, not "already stored".
        Assert.False((await Layers.UploadAsync(_client, ns, data)).AlreadyExisted);
    }

    private async Task CommitStep(string ns, string key, byte[] data)
    {
        await Layers.UploadAsync(_client, ns, data);
        await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = key, Layer = Layers.Descriptor(data) });
    }
}
