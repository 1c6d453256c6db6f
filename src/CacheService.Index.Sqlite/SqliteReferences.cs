using CacheService.Core;
using CacheService.Core.Index;

namespace CacheService.Index.Sqlite;

/// <summary>Blob reference counts, the byte budget, eviction and the collection queue.</summary>
public sealed partial class SqliteLayerIndex
{
    // Evicts least recently used entries, never `keep`, until the namespace is at or below the
    // low watermark and the entry limit. Runs inside the commit's transaction, so budget and
    // entries never disagree.
    private List<Digest> EvictToBudget(string ns, Digest keep, NamespaceBudget budget)
    {
        var evicted = new List<Digest>();
        var overBytes = StoredBytes(ns) > budget.HighWatermarkBytes;
        if (!overBytes && EntryCount(ns) <= budget.MaxEntries)
        {
            return evicted;
        }

        while ((overBytes && StoredBytes(ns) > budget.LowWatermarkBytes) || EntryCount(ns) > budget.MaxEntries)
        {
            var victim = KeysWhere("SELECT key FROM entries WHERE ns = $ns AND key <> $keep ORDER BY recency LIMIT 1", ("$ns", ns), ("$keep", keep.Value)).FirstOrDefault();
            if (victim == default)
            {
                break;
            }

            RemoveEntry(ns, victim);
            evicted.Add(victim);
        }

        _db.Execute("UPDATE namespaces SET evictions = evictions + $n WHERE ns = $ns", ("$n", evicted.Count), ("$ns", ns));
        return evicted;
    }

    // A blob's first reference adds its size to the namespace's bytes and takes it off the
    // collection queue (it may have been unreferenced a moment ago and not collected yet).
    private void AddReference(string ns, Digest key, BlobRef blob)
    {
        _db.Execute("INSERT INTO entry_blobs (ns, key, digest, size) VALUES ($ns, $key, $digest, $size)",
            ("$ns", ns), ("$key", key.Value), ("$digest", blob.Digest.Value), ("$size", blob.Size));
        if (_db.Execute("UPDATE blobs SET refs = refs + 1 WHERE ns = $ns AND digest = $digest", ("$ns", ns), ("$digest", blob.Digest.Value)) == 0)
        {
            _db.Execute("INSERT INTO blobs (ns, digest, size, refs) VALUES ($ns, $digest, $size, 1)",
                ("$ns", ns), ("$digest", blob.Digest.Value), ("$size", blob.Size));
            _db.Execute("UPDATE namespaces SET stored_bytes = stored_bytes + $size WHERE ns = $ns", ("$size", blob.Size), ("$ns", ns));
            _db.Execute("DELETE FROM gc_queue WHERE ns = $ns AND digest = $digest", ("$ns", ns), ("$digest", blob.Digest.Value));
        }
    }

    // A blob's last reference going removes its size and queues it for deletion after the grace period.
    private void DropReference(string ns, BlobRef blob)
    {
        _db.Execute("UPDATE blobs SET refs = refs - 1 WHERE ns = $ns AND digest = $digest", ("$ns", ns), ("$digest", blob.Digest.Value));
        var size = _db.Query("DELETE FROM blobs WHERE ns = $ns AND digest = $digest AND refs <= 0 RETURNING size",
            r => (long?)r.GetInt64(0), ("$ns", ns), ("$digest", blob.Digest.Value)).SingleOrDefault();
        if (size is { } bytes)
        {
            _db.Execute("UPDATE namespaces SET stored_bytes = stored_bytes - $size WHERE ns = $ns", ("$size", bytes), ("$ns", ns));
            _db.Execute("INSERT OR REPLACE INTO gc_queue (ns, digest, since) VALUES ($ns, $digest, $now)",
                ("$ns", ns), ("$digest", blob.Digest.Value), ("$now", _time.GetUtcNow().ToUnixTimeMilliseconds()));
        }
    }

    // The namespace's logical clock, advanced by one: the recency of a use.
    private long Tick(string ns)
    {
        EnsureNamespace(ns);
        return _db.Query("UPDATE namespaces SET clock = clock + 1 WHERE ns = $ns RETURNING clock", r => r.GetInt64(0), ("$ns", ns)).Single();
    }

    private void EnsureNamespace(string ns) => _db.Execute("INSERT OR IGNORE INTO namespaces (ns) VALUES ($ns)", ("$ns", ns));

    private long StoredBytes(string ns) => _db.Scalar("SELECT COALESCE((SELECT stored_bytes FROM namespaces WHERE ns = $ns), 0)", ("$ns", ns));

    private long EntryCount(string ns) => _db.Scalar("SELECT COALESCE((SELECT entries FROM namespaces WHERE ns = $ns), 0)", ("$ns", ns));
}
