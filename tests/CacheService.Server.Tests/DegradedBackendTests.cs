using CacheService.Api.V1;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Tests;

/// <summary>
/// A cache must never break a build: an index that hangs or is down makes lookups answer a
/// degraded miss in time, and writes answer UNAVAILABLE. (The real outage, a stopped Redis, is
/// tested with the Redis engine; here the embedded index is wrapped to stall or fail on demand.)
/// </summary>
public sealed class DegradedBackendTests : IAsyncLifetime
{
    private TroubledIndex _index = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(
            services => services.AddSingleton<ILayerIndex>(sp =>
                _index = new TroubledIndex(new SqliteLayerIndex(
                    Path.Combine(sp.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory, "index.db"), TimeProvider.System))),
            "--CacheService:Limits:LookupTimeout=00:00:00.2");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_stalled_index_makes_lookups_and_chains_answer_a_degraded_miss_in_time()
    {
        var data = Layers.Random(100, 1);
        await Layers.UploadAndCommitAsync(_server.Client, "degraded", "k", data);
        _index.Stalled = true;

        var deadline = DateTime.UtcNow.AddSeconds(5);
        var lookup = await _server.Client.LookupAsync(new LookupRequest { Namespace = "degraded", Key = Layers.Key("k") }, deadline: deadline);
        Assert.False(lookup.Hit);
        Assert.True(lookup.Degraded);

        var chain = await _server.Client.ResolveChainAsync(new ResolveChainRequest
        {
            Namespace = "degraded",
            BaseState = Layers.DigestOf([1]),
            Platform = "linux/amd64",
            Steps = { new StepInput { Instruction = "RUN x" } },
        }, deadline: deadline);
        Assert.True(chain.Degraded);
        Assert.Equal(StepStatus.Miss, chain.Steps[0].Status);

        _index.Stalled = false;
        Assert.True((await _server.Client.LookupAsync(new LookupRequest { Namespace = "degraded", Key = Layers.Key("k") })).Hit);
    }

    [Fact]
    public async Task A_down_index_makes_lookups_miss_degraded_and_writes_unavailable()
    {
        var data = Layers.Random(100, 2);
        await Layers.UploadAsync(_server.Client, "down", data);
        _index.Down = true;

        var lookup = await _server.Client.LookupAsync(new LookupRequest { Namespace = "down", Key = Layers.Key("k") });
        Assert.True(lookup.Degraded);
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await _server.Client.CommitAsync(new CommitRequest { Namespace = "down", Key = Layers.Key("k"), Layer = Layers.Descriptor(data) }));
        Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        Assert.DoesNotContain("Sqlite", e.Status.Detail, StringComparison.OrdinalIgnoreCase);

        _index.Down = false;
        var commit = await _server.Client.CommitAsync(new CommitRequest { Namespace = "down", Key = Layers.Key("k"), Layer = Layers.Descriptor(data) });
        Assert.True(commit.Created);
    }
}
