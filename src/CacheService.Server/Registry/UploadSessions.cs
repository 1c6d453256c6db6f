using System.Collections.Concurrent;
using CacheService.Core.Observation;
using CacheService.Core.Options;
using CacheService.Core.Transfers;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Registry;

/// <summary>
/// Blob uploads in progress over the registry API (POST, then PATCH chunks, then PUT). The bytes
/// wait in a file under the data directory until the PUT names their digest; only then are they
/// verified and stored, exactly as a gRPC upload. Sessions live on the replica that opened them:
/// behind a load balancer, chunked uploads need session affinity (monolithic ones do not).
/// </summary>
/// <remarks>
/// Bounded three ways, so that abandoned or hostile uploads cannot fill the disk: at most
/// <see cref="LimitsOptions.MaxUploadSessions"/> open at once (429 past it); a session idle for
/// <see cref="LimitsOptions.UploadIdleTimeout"/> (on the injected clock) is dropped with its
/// bytes; and a session holds at most what its namespace may store
/// (<see cref="StorageGuard.MaxUploadBytes"/>), each chunk reserved against the storage limits
/// while it is written.
/// </remarks>
internal sealed class UploadSessions
{
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, Session> _sessions = new(StringComparer.Ordinal);
    private readonly LimitsOptions _limits;
    private readonly StorageGuard _guard;
    private readonly ICacheObserver _observer;
    private readonly TimeProvider _time;
    private int _open;

    public UploadSessions(IOptions<StorageOptions> storage, IOptions<LimitsOptions> limits, StorageGuard guard, ICacheObserver observer, TimeProvider time)
    {
        _limits = limits.Value;
        _guard = guard;
        _observer = observer;
        _time = time;
        _directory = Path.Combine(Path.GetFullPath(storage.Value.DataDirectory), "registry-uploads");
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true); // sessions do not outlive the process
        }

        Directory.CreateDirectory(_directory);
    }

    /// <summary>Sessions open now.</summary>
    public int Count => Volatile.Read(ref _open);

    /// <summary>Opens a session for <paramref name="ns"/>, taken by the request (see <see cref="Take"/>), or refuses with 429 when too many are open.</summary>
    public Session Start(string ns)
    {
        ExpireIdle();
        if (Interlocked.Increment(ref _open) > _limits.MaxUploadSessions)
        {
            Interlocked.Decrement(ref _open);
            _observer.Refused(Refusal.UploadSessions);
            throw new RegistryError(429, "TOOMANYREQUESTS", $"{_limits.MaxUploadSessions} uploads are open (CacheService:Limits:MaxUploadSessions); finish or cancel one");
        }

        var session = new Session(Guid.NewGuid().ToString("N"), ns, _directory, _time.GetUtcNow()) { Busy = 1 };
        File.Create(session.Path).Dispose();
        _sessions[session.Id] = session;
        return session;
    }

    /// <summary>Takes the session for one request (so two requests never write one file at once), or null for an unknown one (or one of another repository).</summary>
    public Session? Take(string ns, string id)
    {
        if (!_sessions.TryGetValue(id, out var session) || session.Namespace != ns)
        {
            return null;
        }

        if (Interlocked.Exchange(ref session.Busy, 1) == 1)
        {
            throw new RegistryError(409, "BLOB_UPLOAD_INVALID", $"another request is writing upload {id}");
        }

        return session;
    }

    /// <summary>Gives a session back after a request; it is idle from now.</summary>
    public void Release(Session session)
    {
        session.LastActive = _time.GetUtcNow();
        Volatile.Write(ref session.Busy, 0);
    }

    /// <summary>
    /// Appends <paramref name="body"/> (of <paramref name="declared"/> bytes when known); returns
    /// the new size. A chunk that takes the session past what its namespace may store is refused
    /// (413) and the session keeps what it had.
    /// </summary>
    public async Task<long> AppendAsync(Session session, Stream body, long? declared, CancellationToken cancellationToken)
    {
        var max = _guard.MaxUploadBytes(session.Namespace);
        if (session.Size + (declared ?? 0) > max)
        {
            throw TooLarge(session, max);
        }

        using var room = _guard.Reserve(session.Namespace, declared ?? 0);
        await using var file = new FileStream(session.Path, FileMode.Open, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        file.Position = session.Size;
        var buffer = new byte[1 << 16];
        try
        {
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                if (file.Position + read > max)
                {
                    throw TooLarge(session, max);
                }

                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }

            await file.FlushAsync(cancellationToken);
            session.Size = file.Position;
            return session.Size;
        }
        finally
        {
            file.SetLength(session.Size); // a chunk cut short or refused leaves nothing behind
        }
    }

    /// <summary>Opens the received bytes for the final, verified store.</summary>
    public static Stream Open(Session session) =>
        new FileStream(session.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);

    /// <summary>Ends a session and deletes its bytes.</summary>
    public void End(Session session)
    {
        if (_sessions.TryRemove(session.Id, out _))
        {
            Interlocked.Decrement(ref _open);
            File.Delete(session.Path);
        }
    }

    /// <summary>Ends every session idle for longer than the idle timeout; returns how many.</summary>
    public int ExpireIdle()
    {
        var cutoff = _time.GetUtcNow() - _limits.UploadIdleTimeout;
        var expired = 0;
        foreach (var session in _sessions.Values)
        {
            if (session.LastActive < cutoff && Interlocked.CompareExchange(ref session.Busy, 1, 0) == 0)
            {
                End(session);
                expired++;
            }
        }

        return expired;
    }

    private RegistryError TooLarge(Session session, long max)
    {
        if (max < _limits.MaxLayerBytes)
        {
            _observer.Refused(Refusal.NamespaceBudget); // the budget bound it, not the layer size limit
        }

        return new RegistryError(413, "SIZE_INVALID", $"upload {session.Id} would exceed {max} bytes, the most namespace {session.Namespace} may store");
    }

    /// <summary>One upload in progress.</summary>
    internal sealed class Session(string id, string ns, string directory, DateTimeOffset started)
    {
        // 1 while a request works on the session (or expiry is ending it).
        public int Busy;

        public string Id { get; } = id;

        public string Namespace { get; } = ns;

        public string Path { get; } = System.IO.Path.Combine(directory, id);

        public long Size { get; set; }

        public DateTimeOffset LastActive { get; set; } = started;
    }
}
