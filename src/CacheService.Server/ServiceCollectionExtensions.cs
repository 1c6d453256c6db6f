using CacheService.Blobs.FileSystem;
using CacheService.Blobs.S3;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Core.Options;
using CacheService.Core.Registry;
using CacheService.Index.Redis;
using CacheService.Index.Sqlite;
using CacheService.Server.Hosting;
using CacheService.Server.Observability;
using CacheService.Server.Registry;
using CacheService.Server.Rpc;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Registry;
using Polly.Retry;
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
        AddValidatedOptions<ObservabilityOptions>(services, ObservabilityOptions.Section, o => o.Validate());

        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ServerEndpoints>();
        services.AddOptions<RedisIndexOptions>().BindConfiguration(RedisIndexOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RedisIndexOptions>>(sp => new EngineValidator<RedisIndexOptions>(
            RedisIndexOptions.Section, () => Storage(sp).IndexEngine == "redis", o => o.Validate()));
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
        AddBlobStore(services);
        services.TryAddSingleton(sp => new LayerCache(
            sp.GetRequiredService<ILayerIndex>(),
            sp.GetRequiredService<IBlobStore>(),
            sp.GetRequiredService<IOptions<LimitsOptions>>().Value,
            Eviction(sp),
            Storage(sp).BlobEngine == "s3" && sp.GetRequiredService<IOptions<S3BlobOptions>>().Value.DirectTransfer
                ? sp.GetRequiredService<S3BlobStore>()
                : null));
        services.TryAddSingleton(sp => new OciRegistry(
            sp.GetRequiredService<LayerCache>(), sp.GetRequiredService<ILayerIndex>(), sp.GetRequiredService<IBlobStore>(), Eviction(sp)));
        services.TryAddSingleton<UploadSessions>();
        services.TryAddSingleton<BlobCollector>();
        services.TryAddSingleton<OrphanSweeper>();
        services.AddSingleton<IHostedService>(sp => new PeriodicBlobWork(
            "blob collection",
            () => Eviction(sp).CollectionInterval,
            ct => sp.GetRequiredService<BlobCollector>().CollectOnceAsync(Eviction(sp).BlobGracePeriod, ct),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PeriodicBlobWork>>()));
        services.AddSingleton<IHostedService>(sp => new PeriodicBlobWork(
            "orphan sweep",
            () => Eviction(sp).OrphanSweepInterval,
            ct => sp.GetRequiredService<OrphanSweeper>().SweepOnceAsync(Eviction(sp).BlobGracePeriod, ct),
            sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<PeriodicBlobWork>>()));

        services.TryAddSingleton<CacheMetrics>();
        services.TryAddSingleton<NamespaceSampler>();
        services.AddHostedService(sp => sp.GetRequiredService<NamespaceSampler>());

        services.AddGrpc(grpc =>
        {
            // Outermost first: the timing sees the status code the error mapping chose.
            grpc.Interceptors.Add<RpcMetricsInterceptor>();
            grpc.Interceptors.Add<ErrorMappingInterceptor>();
            grpc.EnableDetailedErrors = false;
        });
        services.AddOptions<global::Grpc.AspNetCore.Server.GrpcServiceOptions>()
            .Configure<IOptions<ServerOptions>>((grpc, server) => grpc.MaxReceiveMessageSize = server.Value.MaxMessageBytes);
        services.AddGrpcReflection();
        services.AddGrpcHealthChecks(health =>
            {
                // Service "" is readiness (the index and the blob store answer); service
                // "liveness" asks only whether the process answers, as /healthz.
                health.Services.Map("", check => check.Tags.Contains(StatusEndpoints.ReadinessTag));
                health.Services.Map(StatusEndpoints.LivenessService, check => check.Tags.Contains(StatusEndpoints.LivenessTag));
            })
            .AddCheck("process", () => HealthCheckResult.Healthy(), tags: [StatusEndpoints.LivenessTag])
            .AddCheck<IndexHealthCheck>("index", tags: [StatusEndpoints.ReadinessTag])
            .AddCheck<BlobStoreHealthCheck>("blobs", tags: [StatusEndpoints.ReadinessTag]);
        return services;
    }

    // The blob engine, wrapped in retries, timeouts and a circuit breaker (named Polly pipelines).
    private static void AddBlobStore(IServiceCollection services)
    {
        services.AddOptions<S3BlobOptions>().BindConfiguration(S3BlobOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<S3BlobOptions>>(sp => new EngineValidator<S3BlobOptions>(
            S3BlobOptions.Section, () => Storage(sp).BlobEngine == "s3", o => o.Validate()));
        services.TryAddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<S3BlobOptions>>().Value;
            // Layers take as long as they take; connecting must not. Per-call limits come from
            // the resilience pipelines and the callers' deadlines.
            var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2), PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
            {
                Timeout = Timeout.InfiniteTimeSpan,
            };
            return new S3BlobStore(S3BlobStore.CreateClient(options), http, options);
        });
        // Retry delays, timeouts and breaks follow the wall clock, not the injected TimeProvider:
        // they pace real network calls, while the injected clock governs cache semantics (grace
        // periods, recency) that tests move by hand. Polly would otherwise take the injected one.
        services.AddResiliencePipeline(ResilientBlobStore.IdempotentPipeline, pipeline => WallClock(pipeline)
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<BackendUnavailableException>(),
                MaxRetryAttempts = 2,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(100),
            })
            .AddCircuitBreaker(BlobCircuitBreaker())
            .AddTimeout(TimeSpan.FromSeconds(10)));
        services.AddResiliencePipeline(ResilientBlobStore.UploadPipeline, pipeline => WallClock(pipeline).AddCircuitBreaker(BlobCircuitBreaker()));
        services.TryAddSingleton<IBlobStore>(sp =>
        {
            IBlobStore store = Storage(sp).BlobEngine == "s3"
                ? sp.GetRequiredService<S3BlobStore>()
                : new FileSystemBlobStore(Path.Combine(Storage(sp).DataDirectory, "blobs"));
            var pipelines = sp.GetRequiredService<ResiliencePipelineProvider<string>>();
            return new ResilientBlobStore(store, pipelines.GetPipeline(ResilientBlobStore.IdempotentPipeline), pipelines.GetPipeline(ResilientBlobStore.UploadPipeline));
        });
        services.AddHostedService<BucketSetupService>();
    }

    private static ResiliencePipelineBuilder WallClock(ResiliencePipelineBuilder pipeline)
    {
        pipeline.TimeProvider = TimeProvider.System;
        return pipeline;
    }

    // Opens after half the calls of a 10-second window fail (at least 8 calls) and lets one
    // call through after 5 seconds to see whether the store is back.
    private static CircuitBreakerStrategyOptions BlobCircuitBreaker() => new()
    {
        ShouldHandle = new PredicateBuilder().Handle<BackendUnavailableException>(),
        FailureRatio = 0.5,
        MinimumThroughput = 8,
        SamplingDuration = TimeSpan.FromSeconds(10),
        BreakDuration = TimeSpan.FromSeconds(5),
    };

    private static StorageOptions Storage(IServiceProvider sp) => sp.GetRequiredService<IOptions<StorageOptions>>().Value;

    private static EvictionOptions Eviction(IServiceProvider sp) => sp.GetRequiredService<IOptions<EvictionOptions>>().Value;

    private static void AddValidatedOptions<T>(IServiceCollection services, string section, Func<T, IEnumerable<string>> validate)
        where T : class
    {
        services.AddOptions<T>()
            .BindConfiguration(section)
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<T>>(new ListingValidator<T>(section, validate));
    }

    // An engine's settings matter only when that engine is selected.
    private sealed class EngineValidator<T>(string section, Func<bool> selected, Func<T, IEnumerable<string>> validate) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var problems = selected() ? validate(options).Select(p => $"{section}: {p}").ToList() : [];
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
