using CacheService.Blobs.FileSystem;
using CacheService.Blobs.S3;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Commits;
using CacheService.Core.Index;
using CacheService.Core.Keys;
using CacheService.Core.Lookups;
using CacheService.Core.Observation;
using CacheService.Core.Options;
using CacheService.Core.Registry;
using CacheService.Core.Transfers;
using CacheService.Index.Redis;
using CacheService.Index.Sqlite;
using CacheService.Server.Access;
using CacheService.Server.Hosting;
using CacheService.Server.Observability;
using CacheService.Server.Registry;
using CacheService.Server.Rpc;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Polly.Registry;

namespace CacheService.Server;

/// <summary>Registers the cache and its transports.</summary>
public static class ServiceCollectionExtensions
{
    /// <summary>Adds options (bound and validated at start), the storage engines, the core, gRPC, the registry API, health and background work.</summary>
    public static IServiceCollection AddCacheService(this IServiceCollection services)
    {
        AddValidatedOptions<ServerOptions>(services, ServerOptions.Section, o => o.Validate());
        AddValidatedOptions<StorageOptions>(services, StorageOptions.Section, o => o.Validate());
        AddValidatedOptions<LimitsOptions>(services, LimitsOptions.Section, o => o.Validate());
        AddValidatedOptions<EvictionOptions>(services, EvictionOptions.Section, o => o.Validate());
        AddValidatedOptions<ObservabilityOptions>(services, ObservabilityOptions.Section, o => o.Validate());
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AuthOptions>>(sp => new ListingValidator<AuthOptions>(
            AuthOptions.Section, () => true, o => o.Validate(sp.GetRequiredService<IOptions<ServerOptions>>().Value.ListenAddress)));
        AddValidatedOptions<TlsOptions>(services, TlsOptions.Section, o => o.Validate());
        services.AddOptions<RegistryOptions>().BindConfiguration(RegistryOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<RegistryOptions>>(sp => new ListingValidator<RegistryOptions>(
            RegistryOptions.Section, () => true, o => o.Validate(presigns: Storage(sp).BlobEngine == BlobEngine.S3 && sp.GetRequiredService<IOptions<S3BlobOptions>>().Value.DirectTransfer)));
        services.TryAddSingleton<ServerCertificates>();
        services.AddOptions<IntegrityOptions>().BindConfiguration(IntegrityOptions.Section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<IntegrityOptions>>(sp => new ListingValidator<IntegrityOptions>(
            IntegrityOptions.Section, () => true, o => o.Validate(sharedIndex: Storage(sp).IndexEngine == IndexEngine.Redis)));
        services.TryAddSingleton(sp => sp.GetRequiredService<IOptions<IntegrityOptions>>().Value.Keys(Storage(sp).DataDirectory));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ServerEndpoints>();
        services.TryAddSingleton(sp => new DataDirectoryLock(Storage(sp).DataDirectory));

        AddEngines(services);
        AddCore(services);
        AddAccess(services);
        AddBackgroundWork(services);
        AddTransports(services);
        return services;
    }

    // Every engine registers itself; configuration picks one of each, and only the picked one's
    // settings are validated.
    private static void AddEngines(IServiceCollection services)
    {
        services.AddSqliteLayerIndex(sp => Path.Combine(Storage(sp).DataDirectory, "index.db"));
        services.AddRedisLayerIndex();
        services.AddFileSystemBlobStore(sp => Path.Combine(Storage(sp).DataDirectory, "blobs"));
        services.AddS3BlobStore();
        AddEngineValidation<RedisIndexOptions>(services, RedisIndexOptions.Section, sp => Storage(sp).IndexEngine == IndexEngine.Redis, o => o.Validate());
        AddEngineValidation<S3BlobOptions>(services, S3BlobOptions.Section, sp => Storage(sp).BlobEngine == BlobEngine.S3, o => o.Validate());

        // Entries are signed and checked right above the engine: what the engine holds is not trusted.
        services.TryAddSingleton<ILayerIndex>(sp => new SignedLayerIndex(
            Storage(sp).IndexEngine switch
            {
                IndexEngine.Redis => sp.GetRequiredService<RedisLayerIndex>(),
                _ => sp.GetRequiredService<SqliteLayerIndex>(),
            },
            sp.GetRequiredService<EntryKeys>(),
            sp.GetRequiredService<ICacheObserver>()));
        ResilientBlobStore.AddPipelines(services);
        services.TryAddSingleton<IBlobStore>(sp =>
        {
            IBlobStore engine = Storage(sp).BlobEngine switch
            {
                // A hundred builders pulling one cold layer cost the object store one fetch; the
                // spool, on the data directory's disk, keeps to the free-space floor uploads keep to.
                BlobEngine.S3 => WithLocalCopies(sp, new SingleFlightBlobStore(
                    sp.GetRequiredService<S3BlobStore>(),
                    Path.Combine(Storage(sp).DataDirectory, "spool"),
                    () => DiskHasRoom(sp))),
                _ => sp.GetRequiredService<FileSystemBlobStore>(),
            };
            var pipelines = sp.GetRequiredService<ResiliencePipelineProvider<string>>();
            return new ResilientBlobStore(engine, pipelines.GetPipeline(ResilientBlobStore.IdempotentPipeline), pipelines.GetPipeline(ResilientBlobStore.UploadPipeline));
        });
        services.AddHostedService<BucketSetupService>();
    }

    // The core's services share one set of observed stores; the observer is the metrics.
    private static void AddCore(IServiceCollection services)
    {
        services.TryAddSingleton<CacheMetrics>();
        services.TryAddSingleton<ICacheObserver, MetricsObserver>();
        services.TryAddSingleton(sp => new CacheBackends(
            sp.GetRequiredService<ILayerIndex>(),
            sp.GetRequiredService<IBlobStore>(),
            sp.GetRequiredService<ICacheObserver>(),
            Storage(sp).BlobEngine == BlobEngine.S3 && sp.GetRequiredService<IOptions<S3BlobOptions>>().Value.DirectTransfer
                ? sp.GetRequiredService<S3BlobStore>()
                : null,
            new NamespaceCensus(Limits(sp).MaxNamespaces, sp.GetRequiredService<ICacheObserver>())));
        services.TryAddSingleton(sp => new KeyDerivation(Limits(sp)));
        services.TryAddSingleton(sp => new CacheLookups(sp.GetRequiredService<CacheBackends>(), sp.GetRequiredService<KeyDerivation>(), Limits(sp)));
        services.TryAddSingleton(sp => new LayerCommits(sp.GetRequiredService<CacheBackends>(), sp.GetRequiredService<KeyDerivation>(), Eviction(sp)));
        services.TryAddSingleton(sp => new StorageGuard(Limits(sp), Eviction(sp), sp.GetRequiredService<ICacheObserver>(), () => FreeDiskBytes(Storage(sp).DataDirectory)));
        services.TryAddSingleton(sp => new LayerTransfers(sp.GetRequiredService<CacheBackends>(), Limits(sp), sp.GetRequiredService<StorageGuard>()));
        services.TryAddSingleton(sp => new DirectTransfers(sp.GetRequiredService<CacheBackends>(), sp.GetRequiredService<LayerTransfers>(), sp.GetRequiredService<StorageGuard>()));
        services.TryAddSingleton(sp => new NamespaceAdministration(sp.GetRequiredService<CacheBackends>(), Eviction(sp)));
        services.TryAddSingleton(sp => new OciRegistry(
            sp.GetRequiredService<CacheBackends>(), sp.GetRequiredService<CacheLookups>(), sp.GetRequiredService<LayerCommits>(), sp.GetRequiredService<LayerTransfers>()));
        services.TryAddSingleton(sp => new BlobCollector(sp.GetRequiredService<CacheBackends>().Index, sp.GetRequiredService<CacheBackends>().Blobs, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new BlobScrubber(sp.GetRequiredService<CacheBackends>().Blobs, sp.GetRequiredService<LayerTransfers>()));
        services.TryAddSingleton(sp => new OrphanSweeper(sp.GetRequiredService<CacheBackends>().Index, sp.GetRequiredService<CacheBackends>().Blobs, sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton(sp => new NamespaceSampler(
            sp.GetRequiredService<CacheBackends>().Index, sp.GetRequiredService<CacheMetrics>(), sp.GetRequiredService<StorageGuard>(), sp.GetRequiredService<CacheBackends>().Namespaces, sp.GetRequiredService<IOptions<ObservabilityOptions>>(), sp.GetRequiredService<TimeProvider>()));
    }

    private static void AddAccess(IServiceCollection services)
    {
        services.TryAddSingleton<TokenStore>();
        services.TryAddSingleton(sp => new RegistryTokens(
            System.Security.Cryptography.HKDF.DeriveKey(
                System.Security.Cryptography.HashAlgorithmName.SHA256, sp.GetRequiredService<EntryKeys>().Current, 32, info: "cacheservice registry bearer tokens"u8.ToArray()),
            sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<Authenticator>();
        services.TryAddSingleton<AuditLog>();
    }

    // Each loop survives any failure but shutdown (PeriodicWork).
    private static void AddBackgroundWork(IServiceCollection services)
    {
        AddPeriodicWork(services, "blob collection", runAtStart: false, sp => Eviction(sp).CollectionInterval,
            sp => ct => sp.GetRequiredService<BlobCollector>().CollectOnceAsync(Eviction(sp).BlobGracePeriod, ct));
        AddPeriodicWork(services, "orphan sweep", runAtStart: false, sp => Eviction(sp).OrphanSweepInterval,
            sp => async ct =>
            {
                var deleted = await sp.GetRequiredService<OrphanSweeper>().SweepOnceAsync(Eviction(sp).BlobGracePeriod, ct);
                if (Storage(sp).BlobEngine == BlobEngine.S3)
                {
                    // A staged direct upload outlives its URL by the grace period at most, and an
                    // upload session its last touch by as long.
                    var expiry = sp.GetRequiredService<IOptions<S3BlobOptions>>().Value.PresignExpiry;
                    deleted += await sp.GetRequiredService<S3BlobStore>().SweepStagedUploadsAsync(sp.GetRequiredService<TimeProvider>().GetUtcNow() - expiry - Eviction(sp).BlobGracePeriod, ct);
                }

                return deleted;
            });
        AddPeriodicWork(services, "blob scrub", runAtStart: false, sp => Integrity(sp).ScrubInterval,
            sp => ct => Integrity(sp).ScrubBytesPerRound > 0 ? sp.GetRequiredService<BlobScrubber>().ScrubOnceAsync(Integrity(sp).ScrubBytesPerRound, ct) : Task.FromResult(0));
        AddPeriodicWork(services, "upload session expiry", runAtStart: false, sp => Limits(sp).UploadIdleTimeout,
            sp => ct => Task.FromResult(sp.GetRequiredService<UploadSessions>().ExpireIdle()));
        AddPeriodicWork(services, "namespace sample", runAtStart: true, sp => sp.GetRequiredService<IOptions<ObservabilityOptions>>().Value.SampleInterval,
            sp => async ct =>
            {
                await sp.GetRequiredService<NamespaceSampler>().SampleOnceAsync(ct);
                return 0;
            });
    }

    private static void AddTransports(IServiceCollection services)
    {
        services.AddGrpc(grpc =>
        {
            // Outermost first: the timing sees the status code the error mapping chose.
            grpc.Interceptors.Add<RpcMetricsInterceptor>();
            grpc.Interceptors.Add<ErrorMappingInterceptor>();
            grpc.EnableDetailedErrors = false;
        }).AddServiceOptions<LayerCacheGrpcService>(service => service.Interceptors.Add<AccessInterceptor>());
        services.AddOptions<global::Grpc.AspNetCore.Server.GrpcServiceOptions>()
            .Configure<IOptions<ServerOptions>>((grpc, server) => grpc.MaxReceiveMessageSize = server.Value.MaxMessageBytes);
        services.AddGrpcReflection();
        // With the object store, upload sessions live there, for every replica; else on this one.
        services.TryAddSingleton<UploadSessions>(sp => Storage(sp).BlobEngine == BlobEngine.S3
            ? ActivatorUtilities.CreateInstance<SharedUploadSessions>(sp, sp.GetRequiredService<S3BlobStore>())
            : ActivatorUtilities.CreateInstance<LocalUploadSessions>(sp));
        services.TryAddSingleton<RegistryHandler>();
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
    }

    private static void AddPeriodicWork(
        IServiceCollection services, string name, bool runAtStart, Func<IServiceProvider, TimeSpan> interval, Func<IServiceProvider, Func<CancellationToken, Task<int>>> work) =>
        services.AddSingleton<IHostedService>(sp => new PeriodicWork(
            name, () => interval(sp), work(sp), runAtStart, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<PeriodicWork>>()));

    // Blobs pushed and pulled keep a local copy when configured; the copies keep to the free-space floor too.
    private static IBlobStore WithLocalCopies(IServiceProvider sp, IBlobStore remote) =>
        sp.GetRequiredService<IOptions<S3BlobOptions>>().Value.LocalCopyBytes is > 0 and var bytes
            ? new LocalBlobCopies(remote, Path.Combine(Storage(sp).DataDirectory, "copies"), bytes, () => DiskHasRoom(sp))
            : remote;

    private static bool DiskHasRoom(IServiceProvider sp) => FreeDiskBytes(Storage(sp).DataDirectory) is not { } free || free > Limits(sp).MinFreeDiskBytes;

    // Free bytes on the disk of the data directory (created on first use), or null when it cannot be told.
    private static long? FreeDiskBytes(string dataDirectory)
    {
        try
        {
            return new DriveInfo(Path.GetFullPath(dataDirectory)).AvailableFreeSpace;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            return null;
        }
    }

    private static StorageOptions Storage(IServiceProvider sp) => sp.GetRequiredService<IOptions<StorageOptions>>().Value;

    private static LimitsOptions Limits(IServiceProvider sp) => sp.GetRequiredService<IOptions<LimitsOptions>>().Value;

    private static EvictionOptions Eviction(IServiceProvider sp) => sp.GetRequiredService<IOptions<EvictionOptions>>().Value;

    private static IntegrityOptions Integrity(IServiceProvider sp) => sp.GetRequiredService<IOptions<IntegrityOptions>>().Value;

    private static void AddValidatedOptions<T>(IServiceCollection services, string section, Func<T, IEnumerable<string>> validate)
        where T : class
    {
        services.AddOptions<T>().BindConfiguration(section).ValidateOnStart();
        services.AddSingleton<IValidateOptions<T>>(sp => new ListingValidator<T>(section, () => true, validate));
    }

    // An engine's settings matter only when that engine is selected.
    private static void AddEngineValidation<T>(IServiceCollection services, string section, Func<IServiceProvider, bool> selected, Func<T, IEnumerable<string>> validate)
        where T : class
    {
        services.AddOptions<T>().ValidateOnStart();
        services.AddSingleton<IValidateOptions<T>>(sp => new ListingValidator<T>(section, () => selected(sp), validate));
    }

    // Reports every problem with a section at start, not just the first.
    private sealed class ListingValidator<T>(string section, Func<bool> applies, Func<T, IEnumerable<string>> validate) : IValidateOptions<T>
        where T : class
    {
        public ValidateOptionsResult Validate(string? name, T options)
        {
            var problems = applies() ? validate(options).Select(p => $"{section}: {p}").ToList() : [];
            return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
        }
    }
}
