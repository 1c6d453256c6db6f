using CacheService.Api.V1;
using CacheService.Testing;

namespace CacheService.Server.Tests;

/// <summary>ResolveChain walks steps server-side, and answers the longest cached prefix in one call.</summary>
public sealed class ResolveChainTests(ServerFixture fixture) : IClassFixture<ServerFixture>
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
    public async Task A_metadata_step_leaves_the_state_so_editing_it_keeps_the_next_key_and_WORKDIR_moves_it()
    {
        const string ns = "chain/metadata";
        StepInput make = new() { Instruction = "RUN make" };
        StepInput test = new() { Instruction = "RUN make test" };
        ResolveChainRequest Chain(string between) => new()
        {
            Namespace = ns,
            BaseState = Base,
            Platform = Platform,
            Steps = { make, new StepInput { Instruction = between }, test },
        };

        var labelled = await _client.ResolveChainAsync(Chain("LABEL version=1"));
        await CommitStep(ns, labelled.Steps[0].Key, Layers.Random(1000, 3));
        labelled = await _client.ResolveChainAsync(Chain("LABEL version=1"));
        Assert.Equal([StepStatus.Hit, StepStatus.Config, StepStatus.Miss], labelled.Steps.Select(s => s.Status));
        Assert.Equal(labelled.Steps[0].State, labelled.Steps[1].State); // LABEL made no cache step
        await CommitStep(ns, labelled.Steps[2].Key, Layers.Random(1000, 4));

        var relabelled = await _client.ResolveChainAsync(Chain("LABEL version=2"));
        Assert.Equal(3, relabelled.CachedSteps);
        Assert.Equal(labelled.Steps[2].Key, relabelled.Steps[2].Key);

        var workdir = await _client.ResolveChainAsync(Chain("WORKDIR /src"));
        Assert.Equal(2, workdir.CachedSteps); // a WORKDIR moves the state: RUN make test runs in it
        Assert.NotEqual(labelled.Steps[2].Key, workdir.Steps[2].Key);
    }

    private async Task CommitStep(string ns, string key, byte[] data)
    {
        await Layers.UploadAsync(_client, ns, data);
        await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = key, Layer = Layers.Descriptor(data) });
    }
}
