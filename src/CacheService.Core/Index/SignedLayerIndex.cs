using CacheService.Core.Observation;

namespace CacheService.Core.Index;

/// <summary>
/// Signs every entry it commits and checks every entry it reads, so that a hit is only ever an
/// entry this server (or a replica with the same keys) wrote. An entry whose MAC does not verify
/// (planted straight into Redis or the SQLite file, or written before entries were signed) is a
/// miss: it is removed, and the observer counts it. What a forged entry can cost is a rebuild,
/// never a wrong layer.
/// </summary>
/// <remarks>
/// The engine counted the lookup that found a forged entry as a hit; the namespace's usage is off
/// by that one hit. Tags list from their own index and are not checked there, but pulling one is
/// a lookup, which is.
/// </remarks>
public sealed class SignedLayerIndex(ILayerIndex inner, EntryKeys keys, ICacheObserver observer) : LayerIndexDecorator(inner)
{
    /// <inheritdoc />
    public override async Task<IndexEntry?> LookupAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        await CheckedAsync(ns, await Inner.LookupAsync(ns, key, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public override async Task<IndexEntry?> LookupAndCountAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        await CheckedAsync(ns, await Inner.LookupAndCountAsync(ns, key, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public override async Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var signed = Signed(ns, entry);
        var outcome = await Inner.CommitAsync(ns, signed, budget, cancellationToken);
        if (outcome.Created || IsValid(ns, outcome.Entry))
        {
            return outcome;
        }

        // First writer wins, and the first "writer" was a forger: remove its entry and commit again.
        await RemoveForgedAsync(ns, outcome.Entry.Key, cancellationToken);
        return await Inner.CommitAsync(ns, signed, budget, cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<CommitOutcome> PutTagAsync(string ns, string tag, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var signed = Signed(ns, entry);
        var outcome = await Inner.PutTagAsync(ns, tag, signed, budget, cancellationToken);
        if (outcome.Created || IsValid(ns, outcome.Entry))
        {
            return outcome;
        }

        // The tag already pointed at this layer through a forged entry, which the engine kept.
        await RemoveForgedAsync(ns, outcome.Entry.Key, cancellationToken);
        return await Inner.PutTagAsync(ns, tag, signed, budget, cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<ChainHit>> WalkAsync(
        IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(nextKey);

        // A forged hit ends the walk where it stands: nothing after it may be keyed on its diff id.
        var hits = await Inner.WalkAsync(namespaces, first, (entry, ns) => IsValid(ns, entry) ? nextKey(entry, ns) : null, cancellationToken);
        for (var i = 0; i < hits.Count; i++)
        {
            if (!IsValid(hits[i].Namespace, hits[i].Entry))
            {
                await RemoveForgedAsync(hits[i].Namespace, hits[i].Entry.Key, cancellationToken);
                return [.. hits.Take(i)];
            }
        }

        return hits;
    }

    /// <inheritdoc />
    public override async Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken) =>
        [.. (await Inner.ListEntriesAsync(ns, cancellationToken)).Where(e => IsValid(ns, e))];

    private NewEntry Signed(string ns, NewEntry entry) => entry with { Mac = keys.Sign(ns, entry.Key, entry.Layer, entry.Blobs) };

    private bool IsValid(string ns, IndexEntry entry) => keys.Verify(ns, entry.Key, entry.Layer, entry.Blobs, entry.Mac);

    private async Task<IndexEntry?> CheckedAsync(string ns, IndexEntry? entry, CancellationToken cancellationToken)
    {
        if (entry is null || IsValid(ns, entry))
        {
            return entry;
        }

        await RemoveForgedAsync(ns, entry.Key, cancellationToken);
        return null;
    }

    private async Task RemoveForgedAsync(string ns, Digest key, CancellationToken cancellationToken)
    {
        observer.ForgedEntry(ns);
        await Inner.DeleteAsync(ns, [key], cancellationToken);
    }
}
