using System.Collections.Concurrent;
using CacheService.Core.Observation;
using CacheService.Core.Options;
using CacheService.Core.Transfers;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Registry;

/// <summary>
/// Upload sessions on this replica: the bytes wait in a file under the data directory, the state
/// in memory. For the embedded engines, which serve one replica.
/// </summary>
/// <remarks>
/// Bounded three ways, so that abandoned or hostile uploads cannot fill the disk: at most
/// <see cref="LimitsOptions.MaxUploadSessions"/> open at once (429 past it); a session idle for
/// <see cref="LimitsOptions.UploadIdleTimeout"/> (on the injected clock) is dropped with its
/// bytes; and a session holds at most what its namespace may store, each chunk reserved against
/// the storage limits while it is written.
/// </remarks>
internal sealed class LocalUploadSessions : UploadSessions
{
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, LocalSession> _sessions = new(StringComparer.Ordinal);
    private readonly LimitsOptions _limits;
    private readonly ICacheObserver _observer;
    private readonly TimeProvider _time;
    private int _open;

    public LocalUploadSessions(IOptions<StorageOptions> storage, IOptions<LimitsOptions> limits, StorageGuard guard, ICacheObserver observer, TimeProvider time)
        : base(limits.Value, guard, observer)
    {
        _limits = limits.Value;
        _observer = observer;
        _time = time;
        _directory = Path.Combine(Path.GetFullPath(storage.Value.DataDirectory), "registry-uploads");
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true); // sessions do not outlive the process
        }

        Directory.CreateDirectory(_directory);
    }

    /// <inheritdoc />
    /// <remarks>Refuses with 429 when too many are open.</remarks>
    public override Task<Session> StartAsync(string ns, CancellationToken cancellationToken)
    {
        ExpireIdle();
        if (Interlocked.Increment(ref _open) > _limits.MaxUploadSessions)
        {
            Interlocked.Decrement(ref _open);
            _observer.Refused(Refusal.UploadSessions);
            throw new RegistryError(429, "TOOMANYREQUESTS", $"{_limits.MaxUploadSessions} uploads are open (CacheService:Limits:MaxUploadSessions); finish or cancel one");
        }

        var session = new LocalSession(Guid.NewGuid().ToString("N"), ns, _directory, _time.GetUtcNow()) { Busy = 1 };
        File.Create(session.Path).Dispose();
        _sessions[session.Id] = session;
        return Task.FromResult<Session>(session);
    }

    /// <inheritdoc />
    /// <remarks>Two requests never write one file at once: the second is refused with 409.</remarks>
    public override Task<Session?> TakeAsync(string ns, string id, CancellationToken cancellationToken)
    {
        if (!_sessions.TryGetValue(id, out var session) || session.Namespace != ns)
        {
            return Task.FromResult<Session?>(null);
        }

        if (Interlocked.Exchange(ref session.Busy, 1) == 1)
        {
            throw new RegistryError(409, "BLOB_UPLOAD_INVALID", $"another request is writing upload {id}");
        }

        return Task.FromResult<Session?>(session);
    }

    /// <inheritdoc />
    public override void Release(Session session)
    {
        var local = (LocalSession)session;
        local.LastActive = _time.GetUtcNow();
        Volatile.Write(ref local.Busy, 0);
    }

    /// <inheritdoc />
    public override async Task<long> AppendAsync(Session session, Stream body, long? declared, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(((LocalSession)session).Path, FileMode.Open, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        file.Position = session.Size;
        try
        {
            session.Size = await CopyAsync(session, body, declared, file, before: 0, cancellationToken);
            return session.Size;
        }
        finally
        {
            file.SetLength(session.Size); // a chunk cut short or refused leaves nothing behind
        }
    }

    /// <inheritdoc />
    public override Task<Stream> OpenAsync(Session session, CancellationToken cancellationToken) =>
        Task.FromResult<Stream>(new FileStream(((LocalSession)session).Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true));

    /// <inheritdoc />
    public override Task EndAsync(Session session)
    {
        End(session.Id);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public override int ExpireIdle()
    {
        var cutoff = _time.GetUtcNow() - _limits.UploadIdleTimeout;
        var expired = 0;
        foreach (var session in _sessions.Values)
        {
            if (session.LastActive < cutoff && Interlocked.CompareExchange(ref session.Busy, 1, 0) == 0)
            {
                End(session.Id);
                expired++;
            }
        }

        return expired;
    }

    private void End(string id)
    {
        if (_sessions.TryRemove(id, out var session))
        {
            Interlocked.Decrement(ref _open);
            File.Delete(session.Path);
        }
    }

    private sealed class LocalSession(string id, string ns, string directory, DateTimeOffset started) : Session(id, ns)
    {
        // 1 while a request works on the session (or expiry is ending it).
        public int Busy;

        public string Path { get; } = System.IO.Path.Combine(directory, id);

        public DateTimeOffset LastActive { get; set; } = started;
    }
}
