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
    /// Stores <paramref name="entry"/> as the entry of tag <paramref name="tag"/>, replacing
    /// whatever entry its key had, in one atomic step: a reader sees the old entry or the new one,
    /// never neither. The tag joins the namespace's tag list (<see cref="ListTagsAsync"/>) and
    /// leaves it when its entry goes (eviction, delete, repair). Evicts down to the budget like
    /// <see cref="CommitAsync"/> and throws <see cref="QuotaExceededException"/> in the same case.
    /// Pointing a tag again at the layer it has is a no-op (<see cref="CommitOutcome.Created"/> false).
    /// </summary>
    Task<CommitOutcome> PutTagAsync(string ns, string tag, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken);

    /// <summary>
    /// Up to <paramref name="limit"/> tags of the namespace in ordinal order, those after
    /// <paramref name="after"/> (null: from the first), each with its entry's layer. Reads the tag
    /// list, not the entries; does not touch recency.
    /// </summary>
    Task<IReadOnlyList<TagEntry>> ListTagsAsync(string ns, string? after, int limit, CancellationToken cancellationToken);

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
