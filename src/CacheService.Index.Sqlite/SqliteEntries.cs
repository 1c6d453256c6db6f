using CacheService.Core;
using CacheService.Core.Index;
using Microsoft.Data.Sqlite;

namespace CacheService.Index.Sqlite;

/// <summary>Reading, inserting, touching and removing entries; every method runs inside a transaction.</summary>
public sealed partial class SqliteLayerIndex
{
    // A hit: the entry moves to the front of the LRU and counts one more use.
    private IndexEntry? Touch(string ns, Digest key)
    {
        var entry = ReadEntry(ns, key);
        if (entry is null)
        {
            return null;
        }

        var now = _time.GetUtcNow();
        var recency = Tick(ns);
        _db.Execute("UPDATE entries SET recency = $recency, last_access = $now, hits = hits + 1 WHERE ns = $ns AND key = $key",
            ("$recency", recency), ("$now", now.ToUnixTimeMilliseconds()), ("$ns", ns), ("$key", key.Value));
        return entry with { LastAccess = now, Hits = entry.Hits + 1 };
    }

    private static void CheckQuota(string ns, NewEntry entry, NamespaceBudget budget)
    {
        var ownBytes = entry.Blobs.DistinctBy(b => b.Digest).Sum(b => b.Size);
        if (ownBytes > budget.HighWatermarkBytes)
        {
            throw new QuotaExceededException(
                $"the entry's blobs ({ownBytes} bytes) exceed the budget of namespace {ns} ({budget.HighWatermarkBytes} bytes)");
        }
    }

    // Stores an entry whose key is free, references its blobs, and evicts down to the budget.
    private CommitOutcome Insert(string ns, NewEntry entry, NamespaceBudget budget, string? tag)
    {
        CheckQuota(ns, entry, budget);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var recency = Tick(ns);
        _db.Execute("""
            INSERT INTO entries (ns, key, digest, diff_id, size, media_type, preimage, created, last_access, recency, tag, mac)
            VALUES ($ns, $key, $digest, $diffId, $size, $mediaType, $preimage, $now, $now, $recency, $tag, $mac)
            """,
            ("$ns", ns), ("$key", entry.Key.Value), ("$digest", entry.Layer.Digest.Value), ("$diffId", entry.Layer.DiffId.Value),
            ("$size", entry.Layer.Size), ("$mediaType", entry.Layer.MediaType), ("$preimage", entry.Preimage),
            ("$now", now), ("$recency", recency), ("$tag", (object?)tag ?? DBNull.Value), ("$mac", entry.Mac));
        foreach (var blob in entry.Blobs.DistinctBy(b => b.Digest))
        {
            AddReference(ns, entry.Key, blob);
        }

        _db.Execute("UPDATE namespaces SET entries = entries + 1 WHERE ns = $ns", ("$ns", ns));
        var evicted = EvictToBudget(ns, entry.Key, budget);
        return new CommitOutcome(true, ReadEntry(ns, entry.Key)!, evicted);
    }

    private bool RemoveEntry(string ns, Digest key)
    {
        var blobs = _db.Query("SELECT digest, size FROM entry_blobs WHERE ns = $ns AND key = $key",
            r => new BlobRef(Digest.Parse(r.GetString(0), "digest"), r.GetInt64(1)), ("$ns", ns), ("$key", key.Value));
        if (_db.Execute("DELETE FROM entries WHERE ns = $ns AND key = $key", ("$ns", ns), ("$key", key.Value)) == 0)
        {
            return false;
        }

        _db.Execute("DELETE FROM entry_blobs WHERE ns = $ns AND key = $key", ("$ns", ns), ("$key", key.Value));
        foreach (var blob in blobs)
        {
            DropReference(ns, blob);
        }

        _db.Execute("UPDATE namespaces SET entries = entries - 1 WHERE ns = $ns", ("$ns", ns));
        return true;
    }

    private IndexEntry? ReadEntry(string ns, Digest key, SqliteStatements? db = null)
    {
        db ??= _db;
        var entry = db.Query("""
            SELECT digest, diff_id, size, media_type, preimage, created, last_access, hits, mac
            FROM entries WHERE ns = $ns AND key = $key
            """,
            r => new IndexEntry(
                key,
                ReadLayer(r, 0),
                [],
                r.GetString(4),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)),
                r.GetInt64(7),
                r.GetString(8)),
            ("$ns", ns), ("$key", key.Value)).SingleOrDefault();
        if (entry is null)
        {
            return null;
        }

        var blobs = db.Query("SELECT digest, size FROM entry_blobs WHERE ns = $ns AND key = $key ORDER BY digest",
            r => new BlobRef(Digest.Parse(r.GetString(0), "digest"), r.GetInt64(1)), ("$ns", ns), ("$key", key.Value));
        return entry with { Blobs = blobs };
    }

    // Columns digest, diff_id, size, media_type from `first` on.
    private static LayerDescriptor ReadLayer(SqliteDataReader r, int first) =>
        new(Digest.Parse(r.GetString(first), "digest"), Digest.Parse(r.GetString(first + 1), "diff_id"), r.GetInt64(first + 2), r.GetString(first + 3));
}
