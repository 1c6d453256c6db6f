using CacheService.Core.Blobs;
using CacheService.Core.Observation;
using CacheService.Core.Options;
using CacheService.Core.Transfers;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Registry;

/// <summary>
/// Upload sessions in the object store (<see cref="IStagedUploads"/>), so that the POST, each
/// PATCH and the PUT of one upload may each reach a different replica: the session's state is
/// what the store holds (a marker and numbered parts), nothing in memory. A chunk waits in a
/// file under the data directory only while it arrives, then becomes the session's next part.
/// </summary>
/// <remarks>
/// No session limit counts here: a replica does not see the others' sessions. What bounds them is
/// the namespace's room (each session at most what its namespace may store) and the sweep of the
/// staging area, which deletes sessions untouched for the presign expiry plus the blob grace
/// period. Two PATCHes racing on one session may write one part twice; the PUT's digest check
/// then refuses the upload, never stores wrong bytes.
/// </remarks>
internal sealed class SharedUploadSessions : UploadSessions
{
    /// <summary>Most parts one session may have (one per PATCH with a body).</summary>
    public const int MaxParts = 10_000;

    private readonly IStagedUploads _staging;
    private readonly string _directory;

    public SharedUploadSessions(IStagedUploads staging, IOptions<StorageOptions> storage, IOptions<LimitsOptions> limits, StorageGuard guard, ICacheObserver observer)
        : base(limits.Value, guard, observer)
    {
        _staging = staging;
        _directory = Path.Combine(Path.GetFullPath(storage.Value.DataDirectory), "registry-uploads");
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true); // chunks in flight do not outlive the process
        }

        Directory.CreateDirectory(_directory);
    }

    /// <inheritdoc />
    public override async Task<Session> StartAsync(string ns, CancellationToken cancellationToken)
    {
        var session = new SharedSession(Guid.NewGuid().ToString("N"), ns, 0);
        await _staging.TouchSessionAsync(ns, session.Id, cancellationToken);
        return session;
    }

    /// <inheritdoc />
    public override async Task<Session?> TakeAsync(string ns, string id, CancellationToken cancellationToken)
    {
        if (id.Length != 32 || !id.All(char.IsAsciiHexDigitLower))
        {
            return null;
        }

        var parts = await _staging.PartsAsync(ns, id, cancellationToken);
        return parts is null ? null : new SharedSession(id, ns, parts.Count) { Size = parts.Sum() };
    }

    /// <inheritdoc />
    public override void Release(Session session)
    {
    }

    /// <inheritdoc />
    public override async Task<long> AppendAsync(Session session, Stream body, long? declared, CancellationToken cancellationToken)
    {
        var shared = (SharedSession)session;
        var path = Path.Combine(_directory, $"{session.Id}-{Guid.NewGuid():N}");
        try
        {
            await using var chunk = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, useAsync: true);
            var length = await CopyAsync(session, body, declared, chunk, before: session.Size, cancellationToken);
            if (length > 0)
            {
                if (shared.Parts >= MaxParts)
                {
                    throw new RegistryError(416, "BLOB_UPLOAD_INVALID", $"upload {session.Id} has {MaxParts} chunks, the most one upload may have; send larger chunks");
                }

                chunk.Position = 0;
                await _staging.PutPartAsync(session.Namespace, session.Id, shared.Parts, length, chunk, cancellationToken);
                shared.Parts++;
                session.Size += length;
            }

            await _staging.TouchSessionAsync(session.Namespace, session.Id, cancellationToken); // active: the sweep waits
            return session.Size;
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <inheritdoc />
    public override Task<Stream> OpenAsync(Session session, CancellationToken cancellationToken) =>
        Task.FromResult<Stream>(new PartsStream(_staging, session.Namespace, session.Id, ((SharedSession)session).Parts));

    /// <inheritdoc />
    public override Task EndAsync(Session session) =>
        _staging.DeleteSessionAsync(session.Namespace, session.Id, CancellationToken.None);

    private sealed class SharedSession(string id, string ns, int parts) : Session(id, ns)
    {
        public int Parts { get; set; } = parts;
    }

    // The parts one after another, each opened when the one before it ends.
    private sealed class PartsStream(IStagedUploads staging, string ns, string id, int parts) : ReadOnlyStream
    {
        private Stream? _current;
        private int _next;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                if (_current is null)
                {
                    if (_next == parts)
                    {
                        return 0;
                    }

                    _current = await staging.OpenPartAsync(ns, id, _next++, cancellationToken);
                }

                var read = await _current.ReadAsync(buffer, cancellationToken);
                if (read > 0 || buffer.Length == 0)
                {
                    return read;
                }

                await _current.DisposeAsync();
                _current = null;
            }
        }

        public override async ValueTask DisposeAsync()
        {
            if (_current is not null)
            {
                await _current.DisposeAsync();
            }

            await base.DisposeAsync();
        }
    }
}
