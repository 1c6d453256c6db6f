namespace CacheService.Core.Index;

/// <summary>An entry to commit.</summary>
/// <param name="Key">The cache key.</param>
/// <param name="Layer">The layer the key resolves to.</param>
/// <param name="Blobs">Every blob the entry keeps alive, the layer's blob included (an OCI manifest entry lists its config and layers).</param>
/// <param name="Preimage">The key's components as JSON, kept to explain later misses; may be empty.</param>
/// <param name="Mac">The entry's MAC (<see cref="EntryKeys"/>), stored with it as given; empty when unsigned.</param>
public sealed record NewEntry(Digest Key, LayerDescriptor Layer, IReadOnlyList<BlobRef> Blobs, string Preimage, string Mac = "")
{
    /// <summary>An entry that keeps alive only its layer's blob.</summary>
    public static NewEntry ForLayer(Digest key, LayerDescriptor layer, string preimage = "") =>
        new(key, layer, [new BlobRef(layer.Digest, layer.Size)], preimage);
}

/// <summary>One hit of <see cref="ILayerIndex.WalkAsync"/>.</summary>
/// <param name="Entry">The entry found.</param>
/// <param name="Namespace">The namespace that held it.</param>
public sealed record ChainHit(IndexEntry Entry, string Namespace);

/// <summary>A stored entry; <paramref name="Mac"/> is what it was committed with (empty: unsigned).</summary>
public sealed record IndexEntry(
    Digest Key,
    LayerDescriptor Layer,
    IReadOnlyList<BlobRef> Blobs,
    string Preimage,
    DateTimeOffset Created,
    DateTimeOffset LastAccess,
    long Hits,
    string Mac = "");

/// <summary>What a commit did.</summary>
/// <param name="Created">False when the key already had an entry.</param>
/// <param name="Entry">The entry now stored under the key (the earlier one when not created).</param>
/// <param name="Evicted">Keys evicted to make room.</param>
public sealed record CommitOutcome(bool Created, IndexEntry Entry, IReadOnlyList<Digest> Evicted);

/// <summary>The budget of one namespace: bytes of unique blobs, and entries.</summary>
/// <param name="HighWatermarkBytes">A commit that takes stored bytes above this evicts.</param>
/// <param name="LowWatermarkBytes">Eviction stops at or below this.</param>
/// <param name="MaxEntries">A commit that takes the entry count above this evicts the least recently
/// used entries until it is back at this count: an entry's index bytes (its record and preimage)
/// are bounded, so this bounds what the namespace holds in the index.</param>
public sealed record NamespaceBudget(long HighWatermarkBytes, long LowWatermarkBytes, long MaxEntries = long.MaxValue);

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

/// <summary>A tag and the layer its entry resolves to (for a registry, the manifest).</summary>
public sealed record TagEntry(string Tag, Digest Key, LayerDescriptor Layer);

/// <summary>A blob nothing references any more, due for deletion from the blob store.</summary>
public readonly record struct CollectableBlob(string Namespace, Digest Digest);
