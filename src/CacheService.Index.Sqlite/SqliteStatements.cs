using CacheService.Core;
using Microsoft.Data.Sqlite;

namespace CacheService.Index.Sqlite;

/// <summary>
/// The connection, its prepared statements, and the one way to use them: a transaction at a time.
/// </summary>
/// <remarks>
/// One connection serves its calls one at a time (a semaphore), each call one transaction.
/// SQLite allows a single writer anyway and nearly every call writes (a lookup hit moves
/// recency), so a pool would only add lock contention. The index keeps a second, read-only
/// instance for scans (WAL lets a reader and the writer run at once), so that listing tags or
/// verifying a big namespace never holds up a lookup. Statements are prepared once and reused:
/// preparing SQL costs more than running these small statements. Reuse is safe because every use
/// holds the gate. A cancelled call stops before its next statement (not inside one:
/// sqlite3_interrupt can leave the flag set for whichever call runs next).
/// </remarks>
internal sealed class SqliteStatements : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, SqliteCommand> _prepared = new(StringComparer.Ordinal);
    private SqliteTransaction? _tx;
    private CancellationToken _cancellation;

    /// <summary>Opens the file; the writer (not <paramref name="readOnly"/>) creates or migrates its tables, so open it first.</summary>
    public SqliteStatements(string path, bool readOnly)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var mode = readOnly ? SqliteOpenMode.ReadOnly : SqliteOpenMode.ReadWriteCreate;
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, Mode = mode }.ToString());
        _connection.Open();
        if (!readOnly)
        {
            SqliteSchema.Apply(_connection);
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> as one transaction, one call at a time. SQLite failures (disk
    /// full, I/O errors, a locked file) surface as an unavailable backend, never as SQLite's text.
    /// </summary>
    public async Task<T> InTransactionAsync<T>(Func<T> work, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            _cancellation = cancellationToken;
            using var tx = _tx = _connection.BeginTransaction();
            var result = work();
            tx.Commit();
            return result;
        }
        catch (SqliteException e)
        {
            throw new BackendUnavailableException("index", e);
        }
        finally
        {
            _tx = null;
            _cancellation = CancellationToken.None;
            _gate.Release();
        }
    }

    public int Execute(string sql, params (string Name, object Value)[] parameters) =>
        Command(sql, parameters).ExecuteNonQuery();

    public long Scalar(string sql, params (string Name, object Value)[] parameters) =>
        Convert.ToInt64(Command(sql, parameters).ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);

    public List<T> Query<T>(string sql, Func<SqliteDataReader, T> read, params (string Name, object Value)[] parameters)
    {
        using var reader = Command(sql, parameters).ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    public void Dispose()
    {
        foreach (var command in _prepared.Values)
        {
            command.Dispose();
        }

        _connection.Dispose();
        _gate.Dispose();
    }

    private SqliteCommand Command(string sql, (string Name, object Value)[] parameters)
    {
        var tx = _tx ?? throw new InvalidOperationException("statements run only inside InTransactionAsync");
        _cancellation.ThrowIfCancellationRequested(); // a scan of many small statements stops between two
        if (!_prepared.TryGetValue(sql, out var command))
        {
            _prepared[sql] = command = _connection.CreateCommand();
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
}
