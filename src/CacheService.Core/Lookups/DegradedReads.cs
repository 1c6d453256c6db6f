using CacheService.Core.Observation;
using CacheService.Core.Options;

namespace CacheService.Core.Lookups;

/// <summary>
/// The one rule for reads a build waits on: a cache must never break a build, so an index that is
/// down, or does not answer within <see cref="LimitsOptions.LookupTimeout"/>, makes the read
/// degraded (the caller answers a miss) instead of an error or a wait. The caller's own
/// cancellation still propagates.
/// </summary>
internal sealed class DegradedReads(LimitsOptions limits, ICacheObserver observer)
{
    /// <summary>Runs <paramref name="read"/> under the lookup timeout; true when it was degraded.</summary>
    public async Task<bool> TryReadAsync(Func<CancellationToken, Task> read, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limits.LookupTimeout);
        try
        {
            await read(timeout.Token);
            return false;
        }
        catch (BackendUnavailableException)
        {
            return true; // the observed index has reported it
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            observer.BackendUnavailable("index", new TimeoutException($"the index did not answer within {limits.LookupTimeout}", e));
            return true;
        }
    }
}
