using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>Registers the Redis index and the one multiplexer it shares.</summary>
public static class RedisIndexRegistration
{
    /// <summary>
    /// Adds <see cref="RedisLayerIndex"/> and its options (section <see cref="RedisIndexOptions.Section"/>).
    /// Nothing connects until the index is first used, so a server on another engine never dials Redis.
    /// </summary>
    public static IServiceCollection AddRedisLayerIndex(this IServiceCollection services)
    {
        services.AddOptions<RedisIndexOptions>().BindConfiguration(RedisIndexOptions.Section);
        services.TryAddSingleton<IConnectionMultiplexer>(sp =>
            RedisConnection.ConnectAsync(sp.GetRequiredService<IOptions<RedisIndexOptions>>().Value).GetAwaiter().GetResult());
        services.TryAddSingleton(sp => new RedisLayerIndex(
            sp.GetRequiredService<IConnectionMultiplexer>(),
            sp.GetRequiredService<IOptions<RedisIndexOptions>>().Value,
            sp.GetRequiredService<TimeProvider>()));
        return services;
    }
}
