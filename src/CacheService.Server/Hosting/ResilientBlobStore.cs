using CacheService.Core;
using CacheService.Core.Blobs;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace CacheService.Server.Hosting;

/// <summary>
/// Adds retries, timeouts and a circuit breaker to any <see cref="IBlobStore"/> by wrapping it.
/// Only idempotent calls (stat, open, delete) are retried, and only on
/// <see cref="BackendUnavailableException"/>; an upload is never retried here because its
/// stream cannot be replayed (the client retries the whole upload). While the breaker is open
/// every call fails at once, so a dead object store costs builds a fast error, not a hang.
/// </summary>
internal sealed class ResilientBlobStore(IBlobStore inner, ResiliencePipeline idempotent, ResiliencePipeline upload) : IBlobStore
{
    /// <summary>Name of the pipeline for idempotent calls in the DI registry.</summary>
    public const string IdempotentPipeline = "blobs-idempotent";

    /// <summary>Name of the pipeline for uploads in the DI registry.</summary>
    public const string UploadPipeline = "blobs-upload";

    public Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        Run(idempotent, ct => inner.GetSizeAsync(ns, digest, ct), cancellationToken);

    public Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken) =>
        Run(upload, ct => inner.PutAsync(ns, digest, size, content, ct), cancellationToken);

    public Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken) =>
        Run(idempotent, ct => inner.OpenReadAsync(ns, digest, offset, ct), cancellationToken);

    public Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        Run(idempotent, ct => inner.DeleteAsync(ns, digest, ct), cancellationToken);

    public IAsyncEnumerable<StoredBlob> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);

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
}
