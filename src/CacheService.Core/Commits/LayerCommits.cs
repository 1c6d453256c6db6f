using CacheService.Core.Index;
using CacheService.Core.Keys;
using CacheService.Core.Options;

namespace CacheService.Core.Commits;

/// <summary>
/// Every write of an index entry: a layer for a key (gRPC), a manifest or a tag (the registry).
/// Each goes to the namespace's budget, and the evictions it causes are reported here, whichever
/// transport asked.
/// </summary>
public sealed class LayerCommits(CacheBackends backends, KeyDerivation keys, EvictionOptions eviction)
{
    /// <summary>
    /// Records key -> layer. The layer's blob must be stored with the stated size. When
    /// <paramref name="inputs"/> are given they must derive <paramref name="key"/>; they are kept so a
    /// later miss can be explained.
    /// </summary>
    public async Task<CommitOutcome> CommitLayerAsync(string ns, Digest key, LayerDescriptor layer, KeyInputs? inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var preimage = keys.Preimage(key, inputs);
        var stored = await backends.Blobs.GetSizeAsync(ns, layer.Digest, cancellationToken)
            ?? throw new PreconditionFailedException($"layer {layer.Digest} is not stored in namespace {ns}; upload it first");
        if (stored != layer.Size)
        {
            throw new PreconditionFailedException($"layer {layer.Digest} is stored with {stored} bytes, not {layer.Size}");
        }

        return await CommitAsync(ns, NewEntry.ForLayer(key, layer, preimage), cancellationToken);
    }

    /// <summary>Stores an entry (first writer wins) and evicts to the namespace's budget.</summary>
    public async Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, CancellationToken cancellationToken)
    {
        backends.Namespaces.AdmitWrite(ns);
        return await CheckedAsync(ns, entry, await backends.Index.CommitAsync(ns, entry, eviction.BudgetFor(ns), cancellationToken), cancellationToken);
    }

    /// <summary>Points <paramref name="tag"/> at <paramref name="entry"/>, atomically replacing what it pointed at.</summary>
    public async Task<CommitOutcome> PutTagAsync(string ns, string tag, NewEntry entry, CancellationToken cancellationToken)
    {
        backends.Namespaces.AdmitWrite(ns);
        return await CheckedAsync(ns, entry, await backends.Index.PutTagAsync(ns, tag, entry, eviction.BudgetFor(ns), cancellationToken), cancellationToken);
    }

    // A commit races the collector and the orphan sweep: either may have found the blob
    // unreferenced and deleted it after the caller checked it was stored. Each side writes, then
    // checks the other's write: the collector re-checks for entries after its delete, and a new
    // entry checks its blobs are still stored; one of the two sees the other, so an entry never
    // stays behind a deleted blob. Here, such an entry is removed and the commit refused.
    private async Task<CommitOutcome> CheckedAsync(string ns, NewEntry entry, CommitOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.Evicted.Count > 0)
        {
            backends.Observer.Evicted(ns, outcome.Evicted.Count);
        }

        if (!outcome.Created)
        {
            return outcome;
        }

        foreach (var blob in entry.Blobs.DistinctBy(b => b.Digest))
        {
            if (await backends.Blobs.GetSizeAsync(ns, blob.Digest, cancellationToken) is null)
            {
                await backends.Index.RemoveEntriesReferencingAsync(ns, blob.Digest, CancellationToken.None);
                throw new PreconditionFailedException($"blob {blob.Digest} was collected while the commit ran; upload it again");
            }
        }

        return outcome;
    }
}
