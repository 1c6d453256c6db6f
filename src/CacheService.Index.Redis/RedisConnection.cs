using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>The one multiplexer a process shares, connected the way a cache needs.</summary>
public static class RedisConnection
{
    /// <summary>Connects with the settings a cache needs: start even when Redis is down, fail fast while it is.</summary>
    public static async Task<IConnectionMultiplexer> ConnectAsync(RedisIndexOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = ConfigurationOptions.Parse(options.Configuration);
        config.AbortOnConnectFail = false;
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.ConnectTimeout = (int)options.ConnectTimeout.TotalMilliseconds;
        config.AsyncTimeout = (int)options.CommandTimeout.TotalMilliseconds;
        config.SyncTimeout = (int)options.CommandTimeout.TotalMilliseconds;
        config.ClientName ??= "cacheservice";
        return await ConnectionMultiplexer.ConnectAsync(config);
    }
}
