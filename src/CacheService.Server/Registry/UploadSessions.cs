using CacheService.Core.Observation;
using CacheService.Core.Options;
using CacheService.Core.Transfers;

namespace CacheService.Server.Registry;

/// <summary>
/// Blob uploads in progress over the registry API (POST, then PATCH chunks, then PUT). The bytes
/// wait until the PUT names their digest; only then are they verified and stored, exactly as a
/// gRPC upload. <see cref="LocalUploadSessions"/> keeps them on this replica's disk (the embedded
/// engines, one replica); <see cref="SharedUploadSessions"/> in the object store, so every request
/// of one upload may reach a different replica.
/// </summary>
/// <remarks>
/// A session holds at most what its namespace may store (<see cref="StorageGuard.MaxUploadBytes"/>):
/// a chunk that would take it past that is refused with 413 and the session keeps what it had.
/// </remarks>
internal abstract class UploadSessions(LimitsOptions limits, StorageGuard guard, ICacheObserver observer)
{
    /// <summary>Opens a session for <paramref name="ns"/>, taken by the request (see <see cref="TakeAsync"/>).</summary>
    public abstract Task<Session> StartAsync(string ns, CancellationToken cancellationToken);

    /// <summary>Takes the session for one request, or null for an unknown one (or one of another repository).</summary>
    public abstract Task<Session?> TakeAsync(string ns, string id, CancellationToken cancellationToken);

    /// <summary>Gives a session back after a request; it is idle from now.</summary>
    public abstract void Release(Session session);

    /// <summary>Appends <paramref name="body"/> (of <paramref name="declared"/> bytes when known); returns the new size.</summary>
    public abstract Task<long> AppendAsync(Session session, Stream body, long? declared, CancellationToken cancellationToken);

    /// <summary>Opens the received bytes, all <see cref="Session.Size"/> of them, for the final, verified store.</summary>
    public abstract Task<Stream> OpenAsync(Session session, CancellationToken cancellationToken);

    /// <summary>Ends a session and deletes its bytes.</summary>
    public abstract Task EndAsync(Session session);

    /// <summary>Ends every session idle for longer than the idle timeout; returns how many.</summary>
    public virtual int ExpireIdle() => 0;

    /// <summary>
    /// Copies <paramref name="body"/> into <paramref name="file"/> at its position, reserving room
    /// for it as it goes; returns the file's new position. <paramref name="before"/> bytes of the
    /// session come before the file's start. Past what the namespace may store it stops with 413,
    /// and the caller cuts the file back.
    /// </summary>
    protected async Task<long> CopyAsync(Session session, Stream body, long? declared, FileStream file, long before, CancellationToken cancellationToken)
    {
        var max = guard.MaxUploadBytes(session.Namespace);
        if (session.Size + (declared ?? 0) > max)
        {
            throw TooLarge(session, max);
        }

        using var room = guard.Reserve(session.Namespace, declared ?? 0);
        var buffer = new byte[1 << 16];
        int read;
        while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (before + file.Position + read > max)
            {
                throw TooLarge(session, max);
            }

            await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }

        await file.FlushAsync(cancellationToken);
        return file.Position;
    }

    /// <summary>Refuses with 413 a blob of <paramref name="size"/> bytes that a session of <paramref name="ns"/> could not hold either.</summary>
    public void CheckRoom(string ns, long size)
    {
        var max = guard.MaxUploadBytes(ns);
        if (size > max)
        {
            throw TooLarge(ns, "the upload", max);
        }
    }

    private RegistryError TooLarge(Session session, long max) => TooLarge(session.Namespace, $"upload {session.Id}", max);

    private RegistryError TooLarge(string ns, string what, long max)
    {
        if (max < limits.MaxLayerBytes)
        {
            observer.Refused(Refusal.NamespaceBudget); // the budget bound it, not the layer size limit
        }

        return new RegistryError(413, "SIZE_INVALID", $"{what} would exceed {max} bytes, the most namespace {ns} may store");
    }

    /// <summary>One upload in progress.</summary>
    internal class Session(string id, string ns)
    {
        public string Id { get; } = id;

        public string Namespace { get; } = ns;

        /// <summary>Bytes received so far.</summary>
        public long Size { get; set; }
    }
}
