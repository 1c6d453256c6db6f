using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Core.Observation;

namespace CacheService.Core;

/// <summary>
/// The stores the core's services share, each wrapped so that every call that finds a backend
/// unavailable reaches the observer, whichever service or transport made it.
/// </summary>
public sealed class CacheBackends
{
    /// <summary>Wraps <paramref name="index"/> and <paramref name="blobs"/> for observation.</summary>
    /// <param name="index">The index engine.</param>
    /// <param name="blobs">The blob engine (already wrapped in resilience, if any).</param>
    /// <param name="observer">Told of every fact the core learns.</param>
    /// <param name="direct">Presigned transfers, when the blob engine offers them and they are enabled.</param>
    /// <param name="namespaces">The namespace limit; none when null.</param>
    public CacheBackends(ILayerIndex index, IBlobStore blobs, ICacheObserver observer, IDirectTransfer? direct = null, NamespaceCensus? namespaces = null)
    {
        ArgumentNullException.ThrowIfNull(observer);
        Index = new ObservedLayerIndex(index, observer);
        Blobs = new ObservedBlobStore(blobs, observer);
        Observer = observer;
        Direct = direct;
        Namespaces = namespaces ?? NamespaceCensus.Unlimited;
    }

    /// <summary>The namespaces the index holds, against the namespace limit.</summary>
    public NamespaceCensus Namespaces { get; }

    /// <summary>The key index.</summary>
    public ILayerIndex Index { get; }

    /// <summary>The blob store.</summary>
    public IBlobStore Blobs { get; }

    /// <summary>Where facts are reported.</summary>
    public ICacheObserver Observer { get; }

    /// <summary>Presigned transfers, or null when not enabled.</summary>
    public IDirectTransfer? Direct { get; }

    // Stats are best effort: losing a counter increment must not fail the request it counts.
    internal async Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken)
    {
        try
        {
            await Index.RecordUsageAsync(ns, delta, cancellationToken);
        }
        catch (BackendUnavailableException)
        {
        }
    }
}
