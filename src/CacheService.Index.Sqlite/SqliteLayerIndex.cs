using CacheService.Core;
using CacheService.Core.Index;

namespace CacheService.Index.Sqlite;

/// <summary>
/// <see cref="ILayerIndex"/> in one SQLite database file: the embedded default.
/// </summary>
/// <remarks>
/// <para>Files by concern: this one holds the contract's calls, each one transaction;
/// <see cref="SqliteSchema"/> the tables and their version; <see cref="SqliteStatements"/> the
/// connection and its gate; <c>SqliteEntries.cs</c> reading and writing entries;
/// <c>SqliteReferences.cs</c> blob references and eviction; <c>SqliteVerify.cs</c> the invariant check.</para>
/// <para>LRU: each namespace has a logical clock that every commit and lookup hit advances; an
/// entry's <c>recency</c> is the clock value of its last use. Eviction takes the lowest recency
/// first. A counter rather than wall time keeps the order exact when two uses share a timestamp.</para>
/// <para>Durability: WAL with synchronous=NORMAL survives a process crash; a power loss may lose
/// the last commits, which for a cache only costs rebuilds.</para>
/// </remarks>
public sealed partial class SqliteLayerIndex : ILayerIndex, IDisposable
{
    private readonly SqliteStatements _db;
    private readonly SqliteStatements _reader; // scans that change nothing: they never wait for, or hold up, the writer
    private readonly TimeProvider _time;

    /// <summary>Opens (creating or migrating if needed) the index at <paramref name="path"/>.</summary>
    public SqliteLayerIndex(string path, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(path);
        _time = time;
        _db = new SqliteStatements(path, readOnly: false);
        _reader = new SqliteStatements(path, readOnly: true);
    }

    /// <inheritdoc />
    public Task<IndexEntry?> LookupAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(() => Touch(ns, key), cancellationToken);

    /// <inheritdoc />
    public Task<IndexEntry?> LookupAndCountAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(() =>
        {
            var entry = Touch(ns, key);
            CountLookups(ns, 1, entry is null ? 0 : 1);
            return entry;
        }, cancellationToken);

    /// <inheritdoc />
    /// <remarks>The whole walk is one transaction: one gate pass and one commit for the chain.</remarks>
    public Task<IReadOnlyList<ChainHit>> WalkAsync(IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(namespaces);
        ArgumentNullException.ThrowIfNull(nextKey);
        return _db.InTransactionAsync<IReadOnlyList<ChainHit>>(() =>
        {
            var hits = new List<ChainHit>();
            var lookups = 0;
            for (Digest? key = first; key is { } current;)
            {
                lookups++;
                var hit = namespaces.Select(ns => Touch(ns, current) is { } entry ? new ChainHit(entry, ns) : null).FirstOrDefault(h => h is not null);
                if (hit is null)
                {
                    break;
                }

                hits.Add(hit);
                key = nextKey(hit.Entry, hit.Namespace);
            }

            CountLookups(namespaces[0], lookups, hits.Count);
            return hits;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(budget);
        return _db.InTransactionAsync(
            () => ReadEntry(ns, entry.Key) is { } existing ? new CommitOutcome(false, existing, []) : Insert(ns, entry, budget, tag: null),
            cancellationToken);
    }

    /// <inheritdoc />
    public Task<CommitOutcome> PutTagAsync(string ns, string tag, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(budget);
        return _db.InTransactionAsync(() =>
        {
            if (ReadEntry(ns, entry.Key) is { } existing)
            {
                if (existing.Layer.Digest == entry.Layer.Digest)
                {
                    _db.Execute("UPDATE entries SET tag = $tag WHERE ns = $ns AND key = $key", ("$tag", tag), ("$ns", ns), ("$key", entry.Key.Value));
                    return new CommitOutcome(false, existing, []);
                }

                CheckQuota(ns, entry, budget); // before anything changes: a refused repoint keeps the old target
                RemoveEntry(ns, entry.Key);
            }

            return Insert(ns, entry, budget, tag);
        }, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<TagEntry>> ListTagsAsync(string ns, string? after, int limit, CancellationToken cancellationToken) =>
        _reader.InTransactionAsync<IReadOnlyList<TagEntry>>(() => _reader.Query(
            "SELECT tag, key, digest, diff_id, size, media_type FROM entries WHERE ns = $ns AND tag IS NOT NULL AND tag > $after ORDER BY tag LIMIT $limit",
            r => new TagEntry(r.GetString(0), Digest.Parse(r.GetString(1), "key"), ReadLayer(r, 2)),
            ("$ns", ns), ("$after", after ?? ""), ("$limit", Math.Max(0, limit))), cancellationToken);

    /// <inheritdoc />
    public Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest> keys, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(() => (long)keys.Count(key => RemoveEntry(ns, key)), cancellationToken);

    /// <inheritdoc />
    public Task<long> DeleteAllAsync(string ns, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(() => (long)KeysWhere("SELECT key FROM entries WHERE ns = $ns", ("$ns", ns)).Count(key => RemoveEntry(ns, key)), cancellationToken);

    /// <inheritdoc />
    public Task<long> RemoveEntriesReferencingAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(
            () => (long)KeysWhere("SELECT key FROM entry_blobs WHERE ns = $ns AND digest = $digest", ("$ns", ns), ("$digest", blob.Value)).Count(key => RemoveEntry(ns, key)),
            cancellationToken);

    /// <inheritdoc />
    public Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(() =>
        {
            EnsureNamespace(ns);
            return _db.Execute("""
                UPDATE namespaces SET lookups = lookups + $lookups, hits = hits + $hits,
                    bytes_uploaded = bytes_uploaded + $up, bytes_downloaded = bytes_downloaded + $down
                WHERE ns = $ns
                """,
                ("$lookups", delta.Lookups), ("$hits", delta.Hits), ("$up", delta.BytesUploaded), ("$down", delta.BytesDownloaded), ("$ns", ns));
        }, cancellationToken);

    /// <inheritdoc />
    public Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken) =>
        _reader.InTransactionAsync(() =>
            _reader.Query("SELECT lookups, hits, entries, stored_bytes, evictions, bytes_uploaded, bytes_downloaded FROM namespaces WHERE ns = $ns",
                r => new NamespaceUsage(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)),
                ("$ns", ns)).SingleOrDefault() ?? new NamespaceUsage(0, 0, 0, 0, 0, 0, 0),
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken) =>
        _reader.InTransactionAsync<IReadOnlyList<IndexEntry>>(
            () => [.. _reader.Query("SELECT key FROM entries WHERE ns = $ns", r => Digest.Parse(r.GetString(0), "key"), ("$ns", ns)).Select(key => ReadEntry(ns, key, _reader)!)],
            cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken) =>
        _reader.InTransactionAsync<IReadOnlyList<string>>(() => _reader.Query("SELECT ns FROM namespaces ORDER BY ns", r => r.GetString(0)), cancellationToken);

    /// <inheritdoc />
    public Task<IReadOnlyList<CollectableBlob>> TakeCollectableBlobsAsync(DateTimeOffset unreferencedSince, int max, CancellationToken cancellationToken) =>
        _db.InTransactionAsync<IReadOnlyList<CollectableBlob>>(() =>
        {
            var due = _db.Query("SELECT ns, digest FROM gc_queue WHERE since <= $cutoff ORDER BY since LIMIT $max",
                r => new CollectableBlob(r.GetString(0), Digest.Parse(r.GetString(1), "digest")),
                ("$cutoff", unreferencedSince.ToUnixTimeMilliseconds()), ("$max", max));
            foreach (var blob in due)
            {
                _db.Execute("DELETE FROM gc_queue WHERE ns = $ns AND digest = $digest", ("$ns", blob.Namespace), ("$digest", blob.Digest.Value));
            }

            return due;
        }, cancellationToken);

    /// <inheritdoc />
    public Task<bool> IsBlobInUseAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        _db.InTransactionAsync(
            () => _db.Scalar(
                "SELECT EXISTS (SELECT 1 FROM blobs WHERE ns = $ns AND digest = $digest) OR EXISTS (SELECT 1 FROM gc_queue WHERE ns = $ns AND digest = $digest)",
                ("$ns", ns), ("$digest", blob.Value)) != 0,
            cancellationToken);

    /// <inheritdoc />
    public void Dispose()
    {
        _reader.Dispose();
        _db.Dispose();
    }

    private List<Digest> KeysWhere(string sql, params (string Name, object Value)[] parameters) =>
        _db.Query(sql, r => Digest.Parse(r.GetString(0), "key"), parameters);

    private void CountLookups(string ns, long lookups, long hits)
    {
        EnsureNamespace(ns);
        _db.Execute("UPDATE namespaces SET lookups = lookups + $lookups, hits = hits + $hits WHERE ns = $ns",
            ("$lookups", lookups), ("$hits", hits), ("$ns", ns));
    }
}
