namespace CacheService.Core.Index;

/// <summary>
/// The key index: cache key -> layer, per namespace, with LRU eviction under a byte budget.
/// </summary>
/// <remarks>
/// <para>Atomicity: every method is one atomic step against the backend. A commit and the evictions
/// it causes happen together; no reader sees the byte counter, the reference counts and the
/// entries disagree.</para>
/// <para>Budget: a namespace's stored bytes count each referenced blob once, however many
/// entries share it. A commit that takes the namespace above the high watermark evicts least
/// recently <em>used</em> entries (a lookup hit counts as use) until it is at or below the low
/// watermark. The entry just committed is never its own victim.</para>
/// <para>Blob lifetime: when the last entry referencing a blob goes (eviction, delete, repair),
/// the blob is queued for collection. <see cref="TakeCollectableBlobsAsync"/> hands it out only
/// after the grace period and only if nothing referenced it again meanwhile, so a download in
/// flight can finish. A commit that references a queued blob takes it off the queue.</para>
/// <para>Failure: a backend that cannot be reached throws <see cref="BackendUnavailableException"/>;
/// callers turn that into a degraded miss for reads and an UNAVAILABLE error for writes.</para>
/// </remarks>
public interface ILayerIndex
{
    /// <summary>Returns the entry under <paramref name="key"/> and refreshes its recency, or null on a miss.</summary>
    Task<IndexEntry?> LookupAsync(string ns, Digest key, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="LookupAsync"/>, and in the same atomic step one lookup (and one hit when found)
    /// added to the namespace's usage: a counted lookup costs one round trip, not two.
    /// </summary>
    Task<IndexEntry?> LookupAndCountAsync(string ns, Digest key, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="entry"/> under its key unless the key already has an entry (first
    /// writer wins), then evicts down to the budget. Throws <see cref="QuotaExceededException"/>
    /// when the entry's own blobs exceed the high watermark.
    /// </summary>
    Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken);

    /// <summary>
    /// Looks up a chain of keys: <paramref name="first"/>, then after each hit the key
    /// <paramref name="nextKey"/> derives from it (null ends the walk); the walk stops at the first
    /// miss. Each key is looked up in <paramref name="namespaces"/> in order (first hit wins),
    /// refreshes recency like <see cref="LookupAsync"/>, and counts one lookup (and one hit when
    /// found) in the first namespace's usage. Engines that can run the walk in one transaction do,
    /// which is what makes a chain cheaper than one lookup per step. <paramref name="nextKey"/> runs
    /// inside that step, so it must be quick and must not call the index.
    /// </summary>
    /// <returns>The hits, in order.</returns>
    Task<IReadOnlyList<ChainHit>> WalkAsync(IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken);

    /// <summary>Removes the given keys (absent keys are ignored); returns how many were removed.</summary>
    Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest> keys, CancellationToken cancellationToken);

    /// <summary>Removes every key of the namespace; returns how many were removed.</summary>
    Task<long> DeleteAllAsync(string ns, CancellationToken cancellationToken);

    /// <summary>
    /// Repair: removes every entry that references <paramref name="blob"/> (it was found missing or
    /// corrupt). Returns how many were removed.
    /// </summary>
    Task<long> RemoveEntriesReferencingAsync(string ns, Digest blob, CancellationToken cancellationToken);

    /// <summary>Adds to the namespace's usage counters (lookups, hits, transferred bytes).</summary>
    Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken);

    /// <summary>The namespace's counters; all zero for a namespace never used.</summary>
    Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken);

    /// <summary>Every entry of the namespace, with its preimage, in no particular order. A scan: for listings, not for the hot path.</summary>
    Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken);

    /// <summary>Every namespace that has committed or recorded usage, in ordinal order.</summary>
    Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Takes up to <paramref name="max"/> blobs whose last reference went at or before
    /// <paramref name="unreferencedSince"/> and that are still unreferenced, removing them from the
    /// collection queue. The caller deletes them from the blob store.
    /// </summary>
    Task<IReadOnlyList<CollectableBlob>> TakeCollectableBlobsAsync(DateTimeOffset unreferencedSince, int max, CancellationToken cancellationToken);

    /// <summary>
    /// True when an entry references the blob, or when it waits out its grace period in the
    /// collection queue. The orphan sweeper deletes only blobs for which this is false.
    /// </summary>
    Task<bool> IsBlobInUseAsync(string ns, Digest blob, CancellationToken cancellationToken);

    /// <summary>Checks the index's invariants for a namespace; an empty list means consistent.</summary>
    Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken);
}

/// <summary>An entry to commit.</summary>
/// <param name="Key">The cache key.</param>
/// <param name="Layer">The layer the key resolves to.</param>
/// <param name="Blobs">Every blob the entry keeps alive, the layer's blob included (an OCI manifest entry lists its config and layers).</param>
/// <param name="Preimage">The key's components as JSON, kept to explain later misses; may be empty.</param>
public sealed record NewEntry(Digest Key, LayerDescriptor Layer, IReadOnlyList<BlobRef> Blobs, string Preimage)
{
    /// <summary>An entry that keeps alive only its layer's blob.</summary>
    public static NewEntry ForLayer(Digest key, LayerDescriptor layer, string preimage = "") =>
        new(key, layer, [new BlobRef(layer.Digest, layer.Size)], preimage);
}

/// <summary>One hit of <see cref="ILayerIndex.WalkAsync"/>.</summary>
/// <param name="Entry">The entry found.</param>
/// <param name="Namespace">The namespace that held it.</param>
public sealed record ChainHit(IndexEntry Entry, string Namespace);

/// <summary>
/// <see cref="ILayerIndex.WalkAsync"/> one call per step, for engines whose namespaces cannot
/// share a transaction (Redis: each namespace is its own cluster slot).
/// </summary>
public static class StepwiseWalk
{
    /// <summary>Walks with <see cref="ILayerIndex.LookupAndCountAsync"/> on the first namespace and plain lookups on the rest.</summary>
    public static async Task<IReadOnlyList<ChainHit>> WalkAsync(
        ILayerIndex index, IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(index);
        ArgumentNullException.ThrowIfNull(namespaces);
        ArgumentNullException.ThrowIfNull(nextKey);
        var hits = new List<ChainHit>();
        for (Digest? key = first; key is { } current;)
        {
            var hit = await index.LookupAndCountAsync(namespaces[0], current, cancellationToken) is { } entry ? new ChainHit(entry, namespaces[0]) : null;
            foreach (var ns in namespaces.Skip(1))
            {
                if (hit is not null)
                {
                    break;
                }

                if (await index.LookupAsync(ns, current, cancellationToken) is { } fallback)
                {
                    hit = new ChainHit(fallback, ns);
                    await index.RecordUsageAsync(namespaces[0], new UsageDelta(Hits: 1), cancellationToken);
                }
            }

            if (hit is null)
            {
                break;
            }

            hits.Add(hit);
            key = nextKey(hit.Entry, hit.Namespace);
        }

        return hits;
    }
}

/// <summary>A stored entry.</summary>
public sealed record IndexEntry(
    Digest Key,
    LayerDescriptor Layer,
    IReadOnlyList<BlobRef> Blobs,
    string Preimage,
    DateTimeOffset Created,
    DateTimeOffset LastAccess,
    long Hits);

/// <summary>What a commit did.</summary>
/// <param name="Created">False when the key already had an entry.</param>
/// <param name="Entry">The entry now stored under the key (the earlier one when not created).</param>
/// <param name="Evicted">Keys evicted to make room.</param>
public sealed record CommitOutcome(bool Created, IndexEntry Entry, IReadOnlyList<Digest> Evicted);

/// <summary>The byte budget of one namespace.</summary>
/// <param name="HighWatermarkBytes">A commit that takes stored bytes above this evicts.</param>
/// <param name="LowWatermarkBytes">Eviction stops at or below this.</param>
public sealed record NamespaceBudget(long HighWatermarkBytes, long LowWatermarkBytes);

/// <summary>Increments to usage counters.</summary>
public readonly record struct UsageDelta(long Lookups = 0, long Hits = 0, long BytesUploaded = 0, long BytesDownloaded = 0);

/// <summary>The counters of one namespace.</summary>
public sealed record NamespaceUsage(
    long Lookups,
    long Hits,
    long Entries,
    long StoredBytes,
    long Evictions,
    long BytesUploaded,
    long BytesDownloaded)
{
    /// <summary>Lookups that missed.</summary>
    public long Misses => Lookups - Hits;

    /// <summary>Hits / lookups; 0 before the first lookup.</summary>
    public double HitRatio => Lookups == 0 ? 0 : (double)Hits / Lookups;
}

/// <summary>A blob nothing references any more, due for deletion from the blob store.</summary>
public readonly record struct CollectableBlob(string Namespace, Digest Digest);
