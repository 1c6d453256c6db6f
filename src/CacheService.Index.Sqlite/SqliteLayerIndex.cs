using CacheService.Core;
using CacheService.Core.Index;
using Microsoft.Data.Sqlite;

namespace CacheService.Index.Sqlite;

/// <summary>
/// <see cref="ILayerIndex"/> in one SQLite database file: the embedded default.
/// </summary>
/// <remarks>
/// <para>One connection serves every call, one call at a time (a semaphore), each call one
/// transaction. SQLite allows a single writer anyway and nearly every call writes (a lookup hit
/// moves recency), so a pool would only add lock contention.</para>
/// <para>LRU: each namespace has a logical clock that every commit and lookup hit advances; an
/// entry's <c>recency</c> is the clock value of its last use. Eviction takes the lowest recency
/// first. A counter rather than wall time keeps the order exact when two uses share a timestamp.</para>
/// <para>Durability: WAL with synchronous=NORMAL survives a process crash; a power loss may lose
/// the last commits, which for a cache only costs rebuilds.</para>
/// </remarks>
public sealed class SqliteLayerIndex : ILayerIndex, IDisposable
{
    private const string Schema = """
        PRAGMA journal_mode = WAL;
        PRAGMA synchronous = NORMAL;
        CREATE TABLE IF NOT EXISTS namespaces (
            ns TEXT PRIMARY KEY,
            clock INTEGER NOT NULL DEFAULT 0,
            entries INTEGER NOT NULL DEFAULT 0,
            stored_bytes INTEGER NOT NULL DEFAULT 0,
            evictions INTEGER NOT NULL DEFAULT 0,
            lookups INTEGER NOT NULL DEFAULT 0,
            hits INTEGER NOT NULL DEFAULT 0,
            bytes_uploaded INTEGER NOT NULL DEFAULT 0,
            bytes_downloaded INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS entries (
            ns TEXT NOT NULL,
            key TEXT NOT NULL,
            digest TEXT NOT NULL,
            diff_id TEXT NOT NULL,
            size INTEGER NOT NULL,
            media_type TEXT NOT NULL,
            preimage TEXT NOT NULL,
            created INTEGER NOT NULL,
            last_access INTEGER NOT NULL,
            recency INTEGER NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (ns, key)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS entries_lru ON entries (ns, recency);
        CREATE TABLE IF NOT EXISTS entry_blobs (
            ns TEXT NOT NULL,
            key TEXT NOT NULL,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            PRIMARY KEY (ns, key, digest)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS entry_blobs_by_digest ON entry_blobs (ns, digest);
        CREATE TABLE IF NOT EXISTS blobs (
            ns TEXT NOT NULL,
            digest TEXT NOT NULL,
            size INTEGER NOT NULL,
            refs INTEGER NOT NULL,
            PRIMARY KEY (ns, digest)
        ) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS gc_queue (
            ns TEXT NOT NULL,
            digest TEXT NOT NULL,
            since INTEGER NOT NULL,
            PRIMARY KEY (ns, digest)
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS gc_queue_by_since ON gc_queue (since);
        """;

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TimeProvider _time;

    /// <summary>Opens (creating if needed) the index at <paramref name="path"/>.</summary>
    public SqliteLayerIndex(string path, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(path);
        _time = time;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        using var schema = CommandOn(_connection, null, Schema, []);
        schema.ExecuteNonQuery();
    }

    /// <inheritdoc />
    public Task<IndexEntry?> LookupAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        InTransactionAsync(tx => Lookup(tx, ns, key), cancellationToken);

    /// <inheritdoc />
    public Task<IndexEntry?> LookupAndCountAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        InTransactionAsync(tx =>
        {
            var entry = Lookup(tx, ns, key);
            EnsureNamespace(tx, ns);
            Execute(tx, "UPDATE namespaces SET lookups = lookups + 1, hits = hits + $hit WHERE ns = $ns", ("$hit", entry is null ? 0 : 1), ("$ns", ns));
            return entry;
        }, cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<ChainHit>> WalkAsync(IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(namespaces);
        ArgumentNullException.ThrowIfNull(nextKey);
        return InTransactionAsync<IReadOnlyList<ChainHit>>(tx =>
        {
            var hits = new List<ChainHit>();
            var lookups = 0;
            for (Digest? key = first; key is { } current;)
            {
                lookups++;
                var hit = namespaces.Select(ns => Lookup(tx, ns, current) is { } entry ? new ChainHit(entry, ns) : null).FirstOrDefault(h => h is not null);
                if (hit is null)
                {
                    break;
                }

                hits.Add(hit);
                key = nextKey(hit.Entry, hit.Namespace);
            }

            EnsureNamespace(tx, namespaces[0]);
            Execute(tx, "UPDATE namespaces SET lookups = lookups + $lookups, hits = hits + $hits WHERE ns = $ns",
                ("$lookups", lookups), ("$hits", hits.Count), ("$ns", namespaces[0]));
            return hits;
        }, cancellationToken);
    }

    private IndexEntry? Lookup(SqliteTransaction tx, string ns, Digest key)
    {
        var entry = ReadEntry(tx, ns, key);
        if (entry is null)
        {
            return null;
        }

        var now = _time.GetUtcNow();
        var recency = Tick(tx, ns);
        Execute(tx, "UPDATE entries SET recency = $recency, last_access = $now, hits = hits + 1 WHERE ns = $ns AND key = $key",
            ("$recency", recency), ("$now", now.ToUnixTimeMilliseconds()), ("$ns", ns), ("$key", key.Value));
        return entry with { LastAccess = now, Hits = entry.Hits + 1 };
    }

    /// <inheritdoc />
    public Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(budget);
        return InTransactionAsync(tx =>
        {
            var existing = ReadEntry(tx, ns, entry.Key);
            if (existing is not null)
            {
                return new CommitOutcome(false, existing, []);
            }

            var blobs = entry.Blobs.DistinctBy(b => b.Digest).ToList();
            var ownBytes = blobs.Sum(b => b.Size);
            if (ownBytes > budget.HighWatermarkBytes)
            {
                throw new QuotaExceededException(
                    $"the entry's blobs ({ownBytes} bytes) exceed the budget of namespace {ns} ({budget.HighWatermarkBytes} bytes)");
            }

            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var recency = Tick(tx, ns);
            Execute(tx, """
                INSERT INTO entries (ns, key, digest, diff_id, size, media_type, preimage, created, last_access, recency)
                VALUES ($ns, $key, $digest, $diffId, $size, $mediaType, $preimage, $now, $now, $recency)
                """,
                ("$ns", ns), ("$key", entry.Key.Value), ("$digest", entry.Layer.Digest.Value), ("$diffId", entry.Layer.DiffId.Value),
                ("$size", entry.Layer.Size), ("$mediaType", entry.Layer.MediaType), ("$preimage", entry.Preimage),
                ("$now", now), ("$recency", recency));
            foreach (var blob in blobs)
            {
                AddReference(tx, ns, entry.Key, blob);
            }

            Execute(tx, "UPDATE namespaces SET entries = entries + 1 WHERE ns = $ns", ("$ns", ns));
            var evicted = EvictToBudget(tx, ns, entry.Key, budget);
            return new CommitOutcome(true, ReadEntry(tx, ns, entry.Key)!, evicted);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest> keys, CancellationToken cancellationToken) =>
        InTransactionAsync(tx => (long)keys.Count(key => RemoveEntry(tx, ns, key)), cancellationToken);

    /// <inheritdoc />
    public Task<long> DeleteAllAsync(string ns, CancellationToken cancellationToken) =>
        InTransactionAsync(tx =>
        {
            var keys = Query(tx, "SELECT key FROM entries WHERE ns = $ns", r => Digest.Parse(r.GetString(0), "key"), ("$ns", ns));
            return (long)keys.Count(key => RemoveEntry(tx, ns, key));
        }, cancellationToken);

    /// <inheritdoc />
    public Task<long> RemoveEntriesReferencingAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        InTransactionAsync(tx =>
        {
            var keys = Query(tx, "SELECT key FROM entry_blobs WHERE ns = $ns AND digest = $digest",
                r => Digest.Parse(r.GetString(0), "key"), ("$ns", ns), ("$digest", blob.Value));
            return (long)keys.Count(key => RemoveEntry(tx, ns, key));
        }, cancellationToken);

    /// <inheritdoc />
    public Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken) =>
        InTransactionAsync(tx =>
        {
            EnsureNamespace(tx, ns);
            Execute(tx, """
                UPDATE namespaces SET lookups = lookups + $lookups, hits = hits + $hits,
                    bytes_uploaded = bytes_uploaded + $up, bytes_downloaded = bytes_downloaded + $down
                WHERE ns = $ns
                """,
                ("$lookups", delta.Lookups), ("$hits", delta.Hits), ("$up", delta.BytesUploaded), ("$down", delta.BytesDownloaded), ("$ns", ns));
            return true;
        }, cancellationToken);

    /// <inheritdoc />
    public Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken) =>
        InTransactionAsync(tx =>
            Query(tx, "SELECT lookups, hits, entries, stored_bytes, evictions, bytes_uploaded, bytes_downloaded FROM namespaces WHERE ns = $ns",
                r => new NamespaceUsage(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)),
                ("$ns", ns)).SingleOrDefault() ?? new NamespaceUsage(0, 0, 0, 0, 0, 0, 0),
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken) =>
        InTransactionAsync<IReadOnlyList<IndexEntry>>(tx =>
            [.. Query(tx, "SELECT key FROM entries WHERE ns = $ns", r => Digest.Parse(r.GetString(0), "key"), ("$ns", ns)).Select(key => ReadEntry(tx, ns, key)!)],
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken) =>
        InTransactionAsync<IReadOnlyList<string>>(tx => Query(tx, "SELECT ns FROM namespaces ORDER BY ns", r => r.GetString(0)), cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<CollectableBlob>> TakeCollectableBlobsAsync(DateTimeOffset unreferencedSince, int max, CancellationToken cancellationToken) =>
        InTransactionAsync<IReadOnlyList<CollectableBlob>>(tx =>
        {
            var due = Query(tx, "SELECT ns, digest FROM gc_queue WHERE since <= $cutoff ORDER BY since LIMIT $max",
                r => new CollectableBlob(r.GetString(0), Digest.Parse(r.GetString(1), "digest")),
                ("$cutoff", unreferencedSince.ToUnixTimeMilliseconds()), ("$max", max));
            foreach (var blob in due)
            {
                Execute(tx, "DELETE FROM gc_queue WHERE ns = $ns AND digest = $digest", ("$ns", blob.Namespace), ("$digest", blob.Digest.Value));
            }

            return due;
        }, cancellationToken);

    /// <inheritdoc />
    public Task<bool> IsBlobInUseAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        InTransactionAsync(
            tx => Scalar(tx, "SELECT EXISTS (SELECT 1 FROM blobs WHERE ns = $ns AND digest = $digest) OR EXISTS (SELECT 1 FROM gc_queue WHERE ns = $ns AND digest = $digest)",
                ("$ns", ns), ("$digest", blob.Value)) != 0,
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken) =>
        InTransactionAsync<IReadOnlyList<string>>(tx =>
        {
            var problems = new List<string>();
            var usage = Query(tx, "SELECT entries, stored_bytes FROM namespaces WHERE ns = $ns",
                r => (Entries: r.GetInt64(0), Bytes: r.GetInt64(1)), ("$ns", ns)).SingleOrDefault();
            var entries = Scalar(tx, "SELECT COUNT(*) FROM entries WHERE ns = $ns", ("$ns", ns));
            var bytes = Scalar(tx, "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE ns = $ns", ("$ns", ns));
            if (usage.Entries != entries)
            {
                problems.Add($"entry counter {usage.Entries} != {entries} entries");
            }

            if (usage.Bytes != bytes)
            {
                problems.Add($"byte counter {usage.Bytes} != {bytes} bytes of referenced blobs");
            }

            problems.AddRange(Query(tx, """
                SELECT b.digest, b.refs, (SELECT COUNT(*) FROM entry_blobs e WHERE e.ns = b.ns AND e.digest = b.digest)
                FROM blobs b WHERE b.ns = $ns
                """,
                r => (Digest: r.GetString(0), Refs: r.GetInt64(1), Actual: r.GetInt64(2)), ("$ns", ns))
                .Where(b => b.Refs != b.Actual || b.Refs <= 0)
                .Select(b => $"blob {b.Digest} has reference count {b.Refs} but {b.Actual} referencing entries"));
            problems.AddRange(Query(tx, """
                SELECT e.key, e.digest FROM entry_blobs e
                WHERE e.ns = $ns AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.ns = e.ns AND b.digest = e.digest)
                """,
                r => $"entry {r.GetString(0)} references blob {r.GetString(1)} that has no reference count", ("$ns", ns)));
            return problems;
        }, cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        if (PreparedCommands.TryGetValue(_connection, out var prepared))
        {
            foreach (var command in prepared.Values)
            {
                command.Dispose();
            }
        }

        _connection.Dispose();
        _gate.Dispose();
    }

    // Evicts least recently used entries, never `keep`, until the namespace is at or below the
    // low watermark. Runs inside the commit's transaction, so budget and entries never disagree.
    private List<Digest> EvictToBudget(SqliteTransaction tx, string ns, Digest keep, NamespaceBudget budget)
    {
        var evicted = new List<Digest>();
        if (StoredBytes(tx, ns) <= budget.HighWatermarkBytes)
        {
            return evicted;
        }

        while (StoredBytes(tx, ns) > budget.LowWatermarkBytes)
        {
            var victim = Query(tx, "SELECT key FROM entries WHERE ns = $ns AND key <> $keep ORDER BY recency LIMIT 1",
                r => Digest.Parse(r.GetString(0), "key"), ("$ns", ns), ("$keep", keep.Value)).FirstOrDefault();
            if (victim == default)
            {
                break;
            }

            RemoveEntry(tx, ns, victim);
            evicted.Add(victim);
        }

        Execute(tx, "UPDATE namespaces SET evictions = evictions + $n WHERE ns = $ns", ("$n", evicted.Count), ("$ns", ns));
        return evicted;
    }

    private bool RemoveEntry(SqliteTransaction tx, string ns, Digest key)
    {
        var blobs = Query(tx, "SELECT digest, size FROM entry_blobs WHERE ns = $ns AND key = $key",
            r => new BlobRef(Digest.Parse(r.GetString(0), "digest"), r.GetInt64(1)), ("$ns", ns), ("$key", key.Value));
        if (Execute(tx, "DELETE FROM entries WHERE ns = $ns AND key = $key", ("$ns", ns), ("$key", key.Value)) == 0)
        {
            return false;
        }

        Execute(tx, "DELETE FROM entry_blobs WHERE ns = $ns AND key = $key", ("$ns", ns), ("$key", key.Value));
        foreach (var blob in blobs)
        {
            DropReference(tx, ns, blob);
        }

        Execute(tx, "UPDATE namespaces SET entries = entries - 1 WHERE ns = $ns", ("$ns", ns));
        return true;
    }

    // A blob's first reference adds its size to the namespace's bytes and takes it off the
    // collection queue (it may have been unreferenced a moment ago and not collected yet).
    private static void AddReference(SqliteTransaction tx, string ns, Digest key, BlobRef blob)
    {
        Execute(tx, "INSERT INTO entry_blobs (ns, key, digest, size) VALUES ($ns, $key, $digest, $size)",
            ("$ns", ns), ("$key", key.Value), ("$digest", blob.Digest.Value), ("$size", blob.Size));
        var updated = Execute(tx, "UPDATE blobs SET refs = refs + 1 WHERE ns = $ns AND digest = $digest",
            ("$ns", ns), ("$digest", blob.Digest.Value));
        if (updated == 0)
        {
            Execute(tx, "INSERT INTO blobs (ns, digest, size, refs) VALUES ($ns, $digest, $size, 1)",
                ("$ns", ns), ("$digest", blob.Digest.Value), ("$size", blob.Size));
            Execute(tx, "UPDATE namespaces SET stored_bytes = stored_bytes + $size WHERE ns = $ns", ("$size", blob.Size), ("$ns", ns));
            Execute(tx, "DELETE FROM gc_queue WHERE ns = $ns AND digest = $digest", ("$ns", ns), ("$digest", blob.Digest.Value));
        }
    }

    // A blob's last reference going removes its size and queues it for deletion after the grace period.
    private void DropReference(SqliteTransaction tx, string ns, BlobRef blob)
    {
        Execute(tx, "UPDATE blobs SET refs = refs - 1 WHERE ns = $ns AND digest = $digest", ("$ns", ns), ("$digest", blob.Digest.Value));
        var size = Query(tx, "DELETE FROM blobs WHERE ns = $ns AND digest = $digest AND refs <= 0 RETURNING size",
            r => (long?)r.GetInt64(0), ("$ns", ns), ("$digest", blob.Digest.Value)).SingleOrDefault();
        if (size is { } bytes)
        {
            Execute(tx, "UPDATE namespaces SET stored_bytes = stored_bytes - $size WHERE ns = $ns", ("$size", bytes), ("$ns", ns));
            Execute(tx, "INSERT OR REPLACE INTO gc_queue (ns, digest, since) VALUES ($ns, $digest, $now)",
                ("$ns", ns), ("$digest", blob.Digest.Value), ("$now", _time.GetUtcNow().ToUnixTimeMilliseconds()));
        }
    }

    private static long Tick(SqliteTransaction tx, string ns)
    {
        EnsureNamespace(tx, ns);
        return Query(tx, "UPDATE namespaces SET clock = clock + 1 WHERE ns = $ns RETURNING clock", r => r.GetInt64(0), ("$ns", ns)).Single();
    }

    private static void EnsureNamespace(SqliteTransaction tx, string ns) =>
        Execute(tx, "INSERT OR IGNORE INTO namespaces (ns) VALUES ($ns)", ("$ns", ns));

    private static long StoredBytes(SqliteTransaction tx, string ns) =>
        Scalar(tx, "SELECT COALESCE((SELECT stored_bytes FROM namespaces WHERE ns = $ns), 0)", ("$ns", ns));

    private static IndexEntry? ReadEntry(SqliteTransaction tx, string ns, Digest key)
    {
        var entry = Query(tx, """
            SELECT digest, diff_id, size, media_type, preimage, created, last_access, hits
            FROM entries WHERE ns = $ns AND key = $key
            """,
            r => new IndexEntry(
                key,
                new LayerDescriptor(Digest.Parse(r.GetString(0), "digest"), Digest.Parse(r.GetString(1), "diff_id"), r.GetInt64(2), r.GetString(3)),
                [],
                r.GetString(4),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)),
                DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)),
                r.GetInt64(7)),
            ("$ns", ns), ("$key", key.Value)).SingleOrDefault();
        if (entry is null)
        {
            return null;
        }

        var blobs = Query(tx, "SELECT digest, size FROM entry_blobs WHERE ns = $ns AND key = $key ORDER BY digest",
            r => new BlobRef(Digest.Parse(r.GetString(0), "digest"), r.GetInt64(1)), ("$ns", ns), ("$key", key.Value));
        return entry with { Blobs = blobs };
    }

    // Runs `work` as one transaction, one call at a time. SQLite failures (disk full, I/O errors,
    // a locked file) surface as an unavailable backend, never as SQLite's own text.
    private async Task<T> InTransactionAsync<T>(Func<SqliteTransaction, T> work, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var tx = _connection.BeginTransaction();
            var result = work(tx);
            tx.Commit();
            return result;
        }
        catch (SqliteException e)
        {
            throw new BackendUnavailableException("index", e);
        }
        finally
        {
            _gate.Release();
        }
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<SqliteConnection, Dictionary<string, SqliteCommand>> PreparedCommands = [];

    private static int Execute(SqliteTransaction tx, string sql, params (string Name, object Value)[] parameters) =>
        Command(tx, sql, parameters).ExecuteNonQuery();

    private static long Scalar(SqliteTransaction tx, string sql, params (string Name, object Value)[] parameters) =>
        Convert.ToInt64(Command(tx, sql, parameters).ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);

    private static List<T> Query<T>(SqliteTransaction tx, string sql, Func<SqliteDataReader, T> read, params (string Name, object Value)[] parameters)
    {
        using var reader = Command(tx, sql, parameters).ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    // Statements are prepared once per connection and reused: preparing SQL costs more than
    // running these small statements. Safe because every use holds the connection's gate.
    private static SqliteCommand Command(SqliteTransaction tx, string sql, (string Name, object Value)[] parameters)
    {
        var cache = PreparedCommands.GetOrCreateValue(tx.Connection!);
        if (!cache.TryGetValue(sql, out var command))
        {
            cache[sql] = command = tx.Connection!.CreateCommand();
            command.CommandText = sql;
        }

        command.Transaction = tx;
        command.Parameters.Clear();
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }

    private static SqliteCommand CommandOn(SqliteConnection connection, SqliteTransaction? tx, string sql, (string Name, object Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }
}
