namespace CacheService.Index.Sqlite;

/// <summary>The invariant check: counters, reference counts and entries agree (on the reader: one snapshot, no writer held up).</summary>
public sealed partial class SqliteLayerIndex
{
    /// <inheritdoc />
    public Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken) =>
        _reader.InTransactionAsync<IReadOnlyList<string>>(() =>
        {
            var problems = new List<string>();
            var usage = _reader.Query("SELECT entries, stored_bytes FROM namespaces WHERE ns = $ns",
                r => (Entries: r.GetInt64(0), Bytes: r.GetInt64(1)), ("$ns", ns)).SingleOrDefault();
            var entries = _reader.Scalar("SELECT COUNT(*) FROM entries WHERE ns = $ns", ("$ns", ns));
            var bytes = _reader.Scalar("SELECT COALESCE(SUM(size), 0) FROM blobs WHERE ns = $ns", ("$ns", ns));
            if (usage.Entries != entries)
            {
                problems.Add($"entry counter {usage.Entries} != {entries} entries");
            }

            if (usage.Bytes != bytes)
            {
                problems.Add($"byte counter {usage.Bytes} != {bytes} bytes of referenced blobs");
            }

            problems.AddRange(_reader.Query("""
                SELECT b.digest, b.refs, (SELECT COUNT(*) FROM entry_blobs e WHERE e.ns = b.ns AND e.digest = b.digest)
                FROM blobs b WHERE b.ns = $ns
                """,
                r => (Digest: r.GetString(0), Refs: r.GetInt64(1), Actual: r.GetInt64(2)), ("$ns", ns))
                .Where(b => b.Refs != b.Actual || b.Refs <= 0)
                .Select(b => $"blob {b.Digest} has reference count {b.Refs} but {b.Actual} referencing entries"));
            problems.AddRange(_reader.Query("""
                SELECT e.key, e.digest FROM entry_blobs e
                WHERE e.ns = $ns AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.ns = e.ns AND b.digest = e.digest)
                """,
                r => $"entry {r.GetString(0)} references blob {r.GetString(1)} that has no reference count", ("$ns", ns)));
            return problems;
        }, cancellationToken);
}
