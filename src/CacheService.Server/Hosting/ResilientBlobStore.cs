using CacheService.Core;
using CacheService.Core.Blobs;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace CacheService.Server.Hosting;

/// <summary>
/// Adds retries, timeouts and a circuit breaker to any <see cref="IBlobStore"/> by wrapping it.
/// Only idempotent calls (stat, open, delete) are retried, and only on
/// <see cref="BackendUnavailableException"/>; an upload is never retried here because its
/// stream cannot be replayed (the client retries the whole upload). While the breaker is open
/// every call fails at once, so a dead object store costs builds a fast error, not a hang.
/// </summary>
internal sealed class ResilientBlobStore(IBlobStore inner, ResiliencePipeline idempotent, ResiliencePipeline upload) : BlobStoreDecorator(inner)
{
    /// <summary>Name of the pipeline for idempotent calls in the DI registry.</summary>
    public const string IdempotentPipeline = "blobs-idempotent";

    /// <summary>Name of the pipeline for uploads in the DI registry.</summary>
    public const string UploadPipeline = "blobs-upload";

    public override Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken) =>
        Run(upload, ct => Inner.PutAsync(ns, digest, size, content, ct), cancellationToken);

    protected override Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken) =>
        Run(idempotent, operation, cancellationToken);

    /// <summary>Registers the two named pipelines.</summary>
    public static void AddPipelines(IServiceCollection services)
    {
        // Retry delays, timeouts and breaks follow the wall clock, not the injected TimeProvider:
        // they pace real network calls, while the injected clock governs cache semantics (grace
        // periods, recency) that tests move by hand. Polly would otherwise take the injected one.
        services.AddResiliencePipeline(IdempotentPipeline, pipeline => WallClock(pipeline)
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<BackendUnavailableException>(),
                MaxRetryAttempts = 2,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(100),
            })
            .AddCircuitBreaker(CircuitBreaker())
            .AddTimeout(TimeSpan.FromSeconds(10)));
        services.AddResiliencePipeline(UploadPipeline, pipeline => WallClock(pipeline).AddCircuitBreaker(CircuitBreaker()));
    }

    private static async Task<T> Run<T>(ResiliencePipeline pipeline, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await pipeline.ExecuteAsync(async ct => await call(ct), cancellationToken);
        }
        catch (Exception e) when (e is BrokenCircuitException or TimeoutRejectedException)
        {
            throw new BackendUnavailableException("blobs", e);
        }
    }

    private static ResiliencePipelineBuilder WallClock(ResiliencePipelineBuilder pipeline)
    {
        pipeline.TimeProvider = TimeProvider.System;
        return pipeline;
    }

    // Opens after half the calls of a 10-second window fail (at least 8 calls) and lets one
    // call through after 5 seconds to see whether the store is back.
    private static CircuitBreakerStrategyOptions CircuitBreaker() => new()
    {
        ShouldHandle = new PredicateBuilder().Handle<BackendUnavailableException>(),
        FailureRatio = 0.5,
        MinimumThroughput = 8,
        SamplingDuration = TimeSpan.FromSeconds(10),
        BreakDuration = TimeSpan.FromSeconds(5),
    };
}
