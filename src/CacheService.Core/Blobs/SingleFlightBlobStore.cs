namespace CacheService.Core.Blobs;

/// <summary>
/// Concurrent reads of one blob share one fetch from the store behind it: when a hundred builders
/// pull the same cold layer at once, the object store serves it once. Meant for a remote store
/// (S3); a local disk gains nothing from it.
/// </summary>
/// <remarks>
/// <para>A whole-blob read (offset 0) that finds no fetch of its blob in progress starts one: the
/// bytes go to a spool file under <c>spoolDirectory</c> as they arrive, and every read of that
/// blob that starts meanwhile follows the file, waiting at its end for more. Each reader still
/// gets the blob from byte 0 and verifies it itself (the spool is a copy in transit, trusted for
/// nothing). Ranged reads go straight to the store.</para>
/// <para>Lifetime: the fetch runs for its readers, not for whoever started it; it stops (and its
/// file goes) when the last reader leaves before the end. A fetch that completes takes new readers
/// no more: they start a fetch of their own, so bytes replaced or deleted in the store are not
/// served from an old copy. A fetch that fails mid-way fails its readers as an outage; one that
/// cannot open (the blob is absent) fails only the reader that started it, and the others ask the
/// store themselves: an answer given before a blob was stored must not reach a reader that asked
/// after (a missing blob repairs the index).</para>
/// <para>Sizes are not shared: a stat that began before an upload ended must not answer a commit
/// that checks after it.</para>
/// <para>Disk: a fetch spools only while <c>spoolHasRoom</c> says the disk has room (the server's
/// free-space floor); otherwise a read that would start a fetch reads the store directly, and one
/// that finds a fetch running still joins it.</para>
/// </remarks>
public sealed class SingleFlightBlobStore : BlobStoreDecorator
{
    private const int CopyBytes = 256 * 1024;
    private readonly string _spool;
    private readonly Func<bool> _spoolHasRoom;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string, Digest), Flight> _flights = [];

    /// <summary>Wraps <paramref name="inner"/>; spool files go to <paramref name="spoolDirectory"/>, emptied now.</summary>
    /// <param name="inner">The store read through.</param>
    /// <param name="spoolDirectory">Where fetches in flight are spooled.</param>
    /// <param name="spoolHasRoom">Whether a new fetch may spool now; always, when null.</param>
    public SingleFlightBlobStore(IBlobStore inner, string spoolDirectory, Func<bool>? spoolHasRoom = null)
        : base(inner)
    {
        _spoolHasRoom = spoolHasRoom ?? (() => true);
        _spool = Path.GetFullPath(spoolDirectory);
        if (Directory.Exists(_spool))
        {
            Directory.Delete(_spool, recursive: true); // a crash's leftovers: no fetch outlives its process
        }

        Directory.CreateDirectory(_spool);
    }

    /// <summary>Fetches in progress.</summary>
    public int FetchesInFlight
    {
        get
        {
            lock (_lock)
            {
                return _flights.Count;
            }
        }
    }

    /// <inheritdoc />
    public override async Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
    {
        if (offset != 0)
        {
            return await Inner.OpenReadAsync(ns, digest, offset, cancellationToken);
        }

        var room = _spoolHasRoom();
        Flight? flight;
        bool leader;
        lock (_lock)
        {
            leader = !_flights.TryGetValue((ns, digest), out flight);
            if (leader && room)
            {
                flight = new Flight(this, (ns, digest), Path.Combine(_spool, Guid.NewGuid().ToString("N")));
                _flights[(ns, digest)] = flight;
            }

            flight?.JoinLocked();
        }

        if (flight is null)
        {
            return await Inner.OpenReadAsync(ns, digest, 0, cancellationToken); // no room to spool: the store directly
        }

        if (leader)
        {
            flight.Start(Inner.OpenReadAsync(ns, digest, 0, flight.Stopping));
        }

        try
        {
            await flight.Opened.WaitAsync(cancellationToken);
            return new SpoolReader(flight);
        }
        catch (Exception) when (!leader && flight.Opened.IsFaulted)
        {
            flight.Leave();
            return await Inner.OpenReadAsync(ns, digest, 0, cancellationToken); // its open failed: ask for yourself
        }
        catch
        {
            flight.Leave();
            throw;
        }
    }

    // Under _lock: the flight takes no new readers any more.
    private void RetireLocked(Flight flight)
    {
        if (_flights.TryGetValue(flight.Key, out var current) && current == flight)
        {
            _flights.Remove(flight.Key);
        }
    }

    /// <summary>One fetch: a store stream copied into a spool file that readers follow.</summary>
    private sealed class Flight(SingleFlightBlobStore owner, (string, Digest) key, string path) : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private long _written;
        private volatile bool _done;
        private volatile Exception? _error;
        private int _users = 1; // the copy itself, until it ends; guarded by the store's lock

        public (string, Digest) Key { get; } = key;

        public string Path { get; } = path;

        public CancellationToken Stopping => _stop.Token;

        public Task Opened => _opened.Task;

        // Joining and leaving take the store's lock, so a reader never joins a flight that its last
        // reader is abandoning at that moment.
        public void JoinLocked() => _users++;

        public void Leave()
        {
            bool remove;
            lock (owner._lock)
            {
                _users--;
                remove = _users == 0;
                if (remove)
                {
                    owner.RetireLocked(this);
                    Dispose();
                }
                else if (_users == 1 && !_done && _error is null)
                {
                    owner.RetireLocked(this); // only the copy is left: nobody wants the rest
                    _stop.Cancel(); // under the lock, so the source is never disposed first
                }
            }

            if (remove)
            {
                File.Delete(Path);
            }
        }

        public void Dispose() => _stop.Dispose();

        public void Start(Task<Stream> opening) => _ = CopyAsync(opening);

        /// <summary>Reads from <paramref name="file"/> at its position, waiting for the copy to bring more.</summary>
        public async ValueTask<int> ReadAsync(FileStream file, Memory<byte> buffer, CancellationToken cancellationToken)
        {
            while (true)
            {
                var progress = Volatile.Read(ref _progress); // taken before the state, so no wake-up is lost

                // Done is read before the length: read after it, a copy that ended in between would
                // look done at a length short of the end, and the reader would stop early (seen
                // under load: one of a hundred readers got no bytes at all).
                var done = _done;
                var written = Interlocked.Read(ref _written);
                if (file.Position < written)
                {
                    return await file.ReadAsync(buffer[..(int)Math.Min(buffer.Length, written - file.Position)], cancellationToken);
                }

                if (_error is { } error)
                {
                    throw error is BlobNotFoundException or BackendUnavailableException ? error : new BackendUnavailableException("blobs", error);
                }

                if (done)
                {
                    return 0;
                }

                await progress.Task.WaitAsync(cancellationToken);
            }
        }

        private async Task CopyAsync(Task<Stream> opening)
        {
            try
            {
                await using var source = await opening;
                await using var file = new FileStream(Path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1, useAsync: true);
                _opened.TrySetResult();
                var buffer = new byte[CopyBytes];
                int read;
                while ((read = await source.ReadAsync(buffer, _stop.Token)) > 0)
                {
                    await file.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
                    Interlocked.Add(ref _written, read);
                    Pulse();
                }

                _done = true;
            }
            catch (Exception e)
            {
                _error = e;
                _opened.TrySetException(e);
            }
            finally
            {
                lock (owner._lock)
                {
                    owner.RetireLocked(this); // complete or failed: later reads start a fetch of their own
                }

                Pulse();
                Leave();
            }
        }

        private void Pulse() => Interlocked.Exchange(ref _progress, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>A reader of one flight's spool file, from its first byte.</summary>
    private sealed class SpoolReader(Flight flight) : ReadOnlyStream
    {
        private FileStream? _file;
        private int _disposed;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _file ??= new FileStream(flight.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, useAsync: true);
            return await flight.ReadAsync(_file, buffer, cancellationToken);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                _file?.Dispose();
                flight.Leave();
            }

            base.Dispose(disposing);
        }
    }
}
