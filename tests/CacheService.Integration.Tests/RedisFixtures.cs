using CacheService.Index.Redis;
using CacheService.Testing;
using StackExchange.Redis;

namespace CacheService.Integration.Tests;

/// <summary>Real Redis servers and one connection to them, shared by the tests of a class; each test uses namespaces of its own.</summary>
public abstract class RedisFixture : IDisposable
{
    protected RedisFixture(RedisServers servers)
    {
        Servers = servers;
        Options = new RedisIndexOptions { Configuration = servers.Configuration };
        Connection = RedisConnection.ConnectAsync(Options).GetAwaiter().GetResult();
    }

    public RedisServers Servers { get; }

    public RedisIndexOptions Options { get; }

    public IConnectionMultiplexer Connection { get; }

    public void Dispose()
    {
        Connection.Dispose();
        Servers.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>One redis-server.</summary>
public sealed class SingleRedis() : RedisFixture(RedisServers.StartSingle());

/// <summary>A 3-master Redis Cluster.</summary>
public sealed class RedisCluster() : RedisFixture(RedisServers.StartCluster());
