using CacheService.Core.Blobs;
using CacheService.Core.Index;

namespace CacheService.Core.Observation;

/// <summary>Tells the observer of every index call that found the index unavailable.</summary>
public sealed class ObservedLayerIndex(ILayerIndex inner, ICacheObserver observer) : LayerIndexDecorator(inner)
{
    /// <inheritdoc />
    protected override Task<T> CallAsync<T>(Func<ILayerIndex, Task<T>> operation, CancellationToken cancellationToken) =>
        Unavailability.ReportAsync(base.CallAsync(operation, cancellationToken), observer);
}

/// <summary>Tells the observer of every blob store call that found the store unavailable.</summary>
public sealed class ObservedBlobStore(IBlobStore inner, ICacheObserver observer) : BlobStoreDecorator(inner)
{
    /// <inheritdoc />
    protected override Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken) =>
        Unavailability.ReportAsync(base.CallAsync(operation, cancellationToken), observer);
}

/// <summary>Reports a backend found unavailable by a call, and lets the exception go on.</summary>
internal static class Unavailability
{
    public static async Task<T> ReportAsync<T>(Task<T> call, ICacheObserver observer)
    {
        try
        {
            return await call;
        }
        catch (BackendUnavailableException e)
        {
            observer.BackendUnavailable(e.Backend, e.InnerException);
            throw;
        }
    }
}
