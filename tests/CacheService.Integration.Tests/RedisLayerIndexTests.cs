using CacheService.Contracts;
using CacheService.Core.Index;
using CacheService.Index.Redis;

namespace CacheService.Integration.Tests;

/// <summary>The index contract on one real redis-server.</summary>
public sealed class RedisLayerIndexTests(SingleRedis redis) : LayerIndexContract, IClassFixture<SingleRedis>
{
    protected override ILayerIndex CreateIndex(TimeProvider time) => new RedisLayerIndex(redis.Connection, redis.Options, time);
}

/// <summary>The same contract, unchanged, on a 3-master Redis Cluster.</summary>
public sealed class RedisClusterLayerIndexTests(RedisCluster cluster) : LayerIndexContract, IClassFixture<RedisCluster>
{
    protected override ILayerIndex CreateIndex(TimeProvider time) => new RedisLayerIndex(cluster.Connection, cluster.Options, time);

    [Fact]
    public void Namespaces_of_the_tests_spread_over_more_than_one_master()
    {
        var masters = Enumerable.Range(0, 40)
            .Select(_ => cluster.Connection.GetServer(cluster.Connection.GetEndPoints()[0]).ClusterConfiguration!
                .GetBySlot($"cs:{{{UniqueNamespace()}}}:m")!.EndPoint)
            .Distinct()
            .Count();
        Assert.True(masters > 1, "every namespace landed on one master; the cluster test would prove nothing");
    }
}
