using CacheService.Index.Redis;
using CacheService.Testing;
using StackExchange.Redis;

namespace CacheService.Integration.Tests;

/// <summary>One redis-server shared by the tests of a class; each test uses namespaces of its own.</summary>
public sealed class SingleRedis : IDisposable
{
    public SingleRedis()
    {
        Servers = RedisServers.StartSingle();
        Options = new RedisIndexOptions { Configuration = Servers.Configuration };
        Connection = RedisLayerIndex.ConnectAsync(Options).GetAwaiter().GetResult();
    }

    public RedisServers Servers { get; }

    public RedisIndexOptions Options { get; }

    public IConnectionMultiplexer Connection { get; }

    public void Dispose()
    {
        Connection.Dispose();
        Servers.Dispose();
    }
}

/// <summary>A 3-master Redis Cluster shared by the tests of a class.</summary>
public sealed class RedisCluster : IDisposable
{
    public RedisCluster()
    {
        Servers = RedisServers.StartCluster();
        Options = new RedisIndexOptions { Configuration = Servers.Configuration };
        Connection = RedisLayerIndex.ConnectAsync(Options).GetAwaiter().GetResult();
    }

    public RedisServers Servers { get; }

    public RedisIndexOptions Options { get; }

    public IConnectionMultiplexer Connection { get; }

    public void Dispose()
    {
        Connection.Dispose();
        Servers.Dispose();
    }
}
