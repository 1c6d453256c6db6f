using CacheService.Blobs.FileSystem;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Core.Options;
using CacheService.Index.Redis;
using CacheService.Index.Sqlite;
using CacheService.Server.Hosting;
using CacheService.Server.Rpc;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace CacheService.Server;

/// <summary>Registers the cache and its transport.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>Adds options (bound and validated at start), the storage engines, the cache, gRPC, health and the blob collector.</summary>
    public static IServiceCollection AddCacheService(this IServiceCollection services)
    {
        AddValidatedOptions<ServerOptions>(services, ServerOptions.Section, o => o.Validate());
        AddValidatedOptions<StorageOptions>(services, StorageOptions.Section, o => o.Validate());
        AddValidatedOptions<LimitsOptions>(services, LimitsOptions.Section, o => o.Validate());
        AddValidatedOptions<EvictionOptions>(services, EvictionOptions.Section, o => o.Validate());

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ServerEndpoints>();
        services.AddOptions<RedisIndexOptions>().BindConfiguration(RedisIndexOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RedisIndexOptions>>(sp => new RedisValidator(sp.GetRequiredService<IOptions<StorageOptions>>()));
        services.TryAddSingleton<IConnectionMultiplexer>(sp =>
            RedisLayerIndex.ConnectAsync(sp.GetRequiredService<IOptions<RedisIndexOptions>>().Value).GetAwaiter().GetResult());
        services.TryAddSingleton<ILayerIndex>(sp => Storage(sp).IndexEngine switch
        {
            "redis" => new RedisLayerIndex(
                sp.GetRequiredService<IConnectionMultiplexer>(),
                sp.GetRequiredService<IOptions<RedisIndexOptions>>().Value,
                sp.GetRequiredService<TimeProvider>()),
            _ => new SqliteLayerIndex(Path.Combine(Storage(sp).DataDirectory, "index.db"), sp.GetRequiredService<TimeProvider>()),
        });
        services.TryAddSingleton<IBlobStore>(sp => new FileSystemBlobStore(Path.Combine(Storage(sp).DataDirectory, "blobs")));
        services.TryAddSingleton(sp => new LayerCache(
            sp.GetRequiredService<ILayerIndex>(),
            sp.GetRequiredService<IBlobStore>(),
            sp.GetRequiredService<IOptions<LimitsOptions>>().Value,
            sp.GetRequiredService<IOptions<EvictionOptions>>().Value));
        services.TryAddSingleton<BlobCollector>();
        services.AddHostedService<BlobCollectionService>();

        services.AddGrpc(grpc =>
        {
            grpc.Interceptors.Add<ErrorMappingInterceptor>();
            grpc.EnableDetailedErrors = false;
        });
        services.AddOptions<global::Grpc.AspNetCore.Server.GrpcServiceOptions>()
            .Configure<IOptions<ServerOptions>>((grpc, server) => grpc.MaxReceiveMessageSize = server.Value.MaxMessageBytes);
        services.AddGrpcReflection();
        services.AddGrpcHealthChecks().AddCheck<IndexHealthCheck>("index");
        return services;
    }

    private static StorageOptions Storage(IServiceProvider sp) => sp.GetRequiredService<IOptions<StorageOptions>>().Value;

    private static void AddValidatedOptions<T>(IServiceCollection services, string section, Func<T, IEnumerable<string>> validate)
        where T : class
    {
        services.AddOptions<T>()
            .BindConfiguration(section)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<T>>(new ListingValidator<T>(section, validate));
    }

    // Redis settings matter only when Redis is the index engine.
    private sealed class RedisValidator(IOptions<StorageOptions> storage) : IValidateOptions<RedisIndexOptions>
    {
        public ValidateOptionsResult Validate(string? name, RedisIndexOptions options)
        {
            if (storage.Value.IndexEngine != "redis")
            {
                return ValidateOptionsResult.Success;
            }

            var problems = options.Validate().Select(p => $"{RedisIndexOptions.Section}: {p}").ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }

    // Reports every problem with a section at start, not just the first.
    private sealed class ListingValidator<T>(string section, Func<T, IEnumerable<string>> validate) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var problems = validate(options).Select(p => $"{section}: {p}").ToList();
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
