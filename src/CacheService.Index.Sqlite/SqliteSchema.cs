using Microsoft.Data.Sqlite;

namespace CacheService.Index.Sqlite;

/// <summary>
/// The index's tables, and the version number (<c>PRAGMA user_version</c>) that says which of
/// them a database file has. Opening a file of an older version migrates it in place; a file of a
/// newer version (written by a newer server) is refused rather than misread.
/// </summary>
/// <remarks>
/// Versions: 1, the first layout (files written before versions were recorded read 0);
/// 2 adds <c>entries.tag</c>, the registry's tags, listed through a partial index without a scan;
/// 3 adds <c>entries.mac</c>, each entry's MAC (entries from before have none, and read as forged).
/// </remarks>
internal static class SqliteSchema
{
    /// <summary>The version this code writes.</summary>
    public const int Version = 3;

    private const string Tables = """
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

    // Tags written before version 2 were entries whose preimage named them ({"ociTag":"..."}).
    private const string Version2 = """
        ALTER TABLE entries ADD COLUMN tag TEXT;
        CREATE INDEX entries_tags ON entries (ns, tag) WHERE tag IS NOT NULL;
        UPDATE entries SET tag = json_extract(preimage, '$.ociTag') WHERE preimage LIKE '{"ociTag":%';
        """;

    private const string Version3 = "ALTER TABLE entries ADD COLUMN mac TEXT NOT NULL DEFAULT '';";

    /// <summary>Creates the tables of a new file, or migrates an older one, in one transaction.</summary>
    public static void Apply(SqliteConnection connection)
    {
        var version = Scalar(connection, "PRAGMA user_version");
        if (version > Version)
        {
            throw new InvalidOperationException(
                $"the index {connection.DataSource} has schema version {version}; this server knows up to {Version}. Use a newer server or a new data directory.");
        }

        Run(connection, Tables);
        if (version < 2 && !HasColumn(connection, "tag"))
        {
            Run(connection, Version2);
        }

        if (version < 3 && !HasColumn(connection, "mac"))
        {
            Run(connection, Version3);
        }

        Run(connection, $"PRAGMA user_version = {Version}");
    }

    private static bool HasColumn(SqliteConnection connection, string column) =>
        Scalar(connection, $"SELECT COUNT(*) FROM pragma_table_info('entries') WHERE name = '{column}'") > 0;

    private static void Run(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}
