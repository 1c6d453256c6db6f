using System.Security.Cryptography;
using CacheService.Core;
using CacheService.Core.Blobs;

namespace CacheService.Blobs.FileSystem;

/// <summary>
/// A replica's local copies of the blobs it moves, in front of a remote store (S3): what a push
/// wrote, and what a read fetched whole, stays on the replica's disk, so the next read of it moves
/// its bytes from there instead of across the network (the fast/slow store of NativeLink, the disk
/// in front of bazel-remote's S3 proxy). Bounded by bytes, least recently used copies go first.
/// </summary>
/// <remarks>
/// <para>The remote store stays the truth: sizes and existence are always asked of it, and a read
/// is served from a copy only after the remote store has said the blob is there, at that size. A
/// blob deleted or evicted anywhere (another replica's collector) is therefore never served from
/// an old copy, and a missing blob still repairs the index. Only the bytes are local, and they
/// are safe to keep: a blob is named by its digest, and a copy is kept only when what passed
/// through hashed to it.</para>
/// <para>A registry GET asks for the size and then for the bytes: an answer the remote store gave
/// within <see cref="ConfirmedFor"/> stands for the read that follows, so a read from a copy costs
/// one round trip to the remote store, not two. Only reads use it; writes and commits always ask.</para>
/// <para>Housekeeping reads (<see cref="BackgroundReads"/>: the scrubber) go to the remote store
/// and leave no copy, so a pass over the whole store neither checks copies instead of the store of
/// record nor pushes the copies builds use out.</para>
/// <para>Copies do not outlive the process: the directory is emptied at start. Nothing is flushed
/// to disk, so after a crash a file could hold anything; starting empty means no copy is trusted
/// that this process did not verify.</para>
/// </remarks>
public sealed class LocalBlobCopies : BlobStoreDecorator
{
    private readonly string _copies;
    private readonly string _staging;
    private readonly long _maxBytes;
    private readonly Func<bool> _hasRoom;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Ns, Digest Digest), Copy> _index = [];
    private readonly Dictionary<(string Ns, Digest Digest), (long Size, long At)> _confirmed = [];
    private long _bytes;
    private long _uses;

    /// <summary>How long a size the remote store gave stands for a read of the same blob that follows.</summary>
    public static readonly TimeSpan ConfirmedFor = TimeSpan.FromSeconds(1);

    /// <summary>Keeps up to <paramref name="maxBytes"/> of copies in <paramref name="directory"/>, emptied now.</summary>
    /// <param name="inner">The remote store.</param>
    /// <param name="directory">Where copies live.</param>
    /// <param name="maxBytes">Most bytes of copies kept; a blob larger than this is never copied.</param>
    /// <param name="hasRoom">Whether the disk may take a new copy now (the server's free-space floor); always, when null.</param>
    public LocalBlobCopies(IBlobStore inner, string directory, long maxBytes, Func<bool>? hasRoom = null)
        : base(inner)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _maxBytes = maxBytes;
        _hasRoom = hasRoom ?? (() => true);
        var root = Path.GetFullPath(directory);
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        _copies = Directory.CreateDirectory(Path.Combine(root, "copies")).FullName;
        _staging = Directory.CreateDirectory(Path.Combine(root, "staging")).FullName;
    }

    /// <summary>Bytes of copies held now.</summary>
    public long Bytes
    {
        get
        {
            lock (_lock)
            {
                return _bytes;
            }
        }
    }

    /// <summary>Reads served from a copy since start.</summary>
    public long ReadsFromCopies => Interlocked.Read(ref _readsFromCopies);

    private long _readsFromCopies;

    /// <inheritdoc />
    public override async Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken)
    {
        if (!Copyable(size))
        {
            return await Inner.PutAsync(ns, digest, size, content, cancellationToken);
        }

        // The bytes go to the remote store and, as they pass, to a copy; the copy is kept once they all hashed right.
        await using var copying = new CopyingStream(this, content, ownsSource: false, ns, digest, size);
        return await Inner.PutAsync(ns, digest, size, copying, cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var size = await Inner.GetSizeAsync(ns, digest, cancellationToken);
        lock (_lock)
        {
            if (size is { } known && _index.ContainsKey((ns, digest)))
            {
                _confirmed[(ns, digest)] = (known, Environment.TickCount64);
            }
            else
            {
                _confirmed.Remove((ns, digest));
            }
        }

        return size;
    }

    /// <inheritdoc />
    public override async Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
    {
        if (BackgroundReads.InProgress)
        {
            return await Inner.OpenReadAsync(ns, digest, offset, cancellationToken); // the scrubber checks the store of record
        }

        var size = Confirmed(ns, digest) ?? await Inner.GetSizeAsync(ns, digest, cancellationToken) ?? throw new BlobNotFoundException(ns, digest);
        if (OpenCopy(ns, digest, size, offset) is { } copy)
        {
            return copy;
        }

        var remote = await Inner.OpenReadAsync(ns, digest, offset, cancellationToken);
        return offset == 0 && Copyable(size) ? new CopyingStream(this, remote, ownsSource: true, ns, digest, size) : remote;
    }

    /// <inheritdoc />
    public override async Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        Forget(ns, digest);
        return await Inner.DeleteAsync(ns, digest, cancellationToken);
    }

    private bool Copyable(long size) => size <= _maxBytes && _hasRoom();

    // The size the remote store gave for a blob with a copy within ConfirmedFor, taken: it stands for one read.
    private long? Confirmed(string ns, Digest digest)
    {
        lock (_lock)
        {
            if (_confirmed.Remove((ns, digest), out var confirmed) && Environment.TickCount64 - confirmed.At <= (long)ConfirmedFor.TotalMilliseconds)
            {
                return confirmed.Size;
            }

            return null;
        }
    }

    // The copy, opened at offset, when there is one of the size the remote store gave; null otherwise.
    private FileStream? OpenCopy(string ns, Digest digest, long size, long offset)
    {
        string path;
        lock (_lock)
        {
            if (!_index.TryGetValue((ns, digest), out var copy) || copy.Size != size)
            {
                return null;
            }

            copy.LastUse = ++_uses;
            path = copy.Path;
        }

        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 0, FileOptions.Asynchronous | FileOptions.SequentialScan);
            stream.Seek(offset, SeekOrigin.Begin);
            Interlocked.Increment(ref _readsFromCopies);
            return stream;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null; // evicted since the lookup: read the remote store
        }
    }

    // Takes a verified staging file in as the copy of (ns, digest), then trims to the budget.
    private void Keep(string staging, string ns, Digest digest, long size)
    {
        var path = Path.Combine(_copies, NamespaceName.Validate(ns, "namespace").Replace('/', '+') + "@" + digest.Hex);
        lock (_lock)
        {
            if (_index.ContainsKey((ns, digest)))
            {
                File.Delete(staging); // another push or read copied it first
                return;
            }

            File.Move(staging, path, overwrite: true);
            _index[(ns, digest)] = new Copy(path, size) { LastUse = ++_uses };
            _bytes += size;
            if (_bytes > _maxBytes)
            {
                // Least recently used first, down to nine tenths, so one more copy does not trim again at once.
                foreach (var (key, old) in _index.OrderBy(e => e.Value.LastUse).ToList())
                {
                    if (_bytes <= _maxBytes / 10 * 9)
                    {
                        break;
                    }

                    Remove(key, old);
                }
            }
        }
    }

    private void Forget(string ns, Digest digest)
    {
        lock (_lock)
        {
            _confirmed.Remove((ns, digest));
            if (_index.TryGetValue((ns, digest), out var copy))
            {
                Remove((ns, digest), copy);
            }
        }
    }

    // Readers of the file keep reading it: an open file outlives its name.
    private void Remove((string, Digest) key, Copy copy)
    {
        _index.Remove(key);
        _confirmed.Remove(key);
        _bytes -= copy.Size;
        File.Delete(copy.Path);
    }

    private sealed class Copy(string path, long size)
    {
        public string Path { get; } = path;

        public long Size { get; } = size;

        public long LastUse { get; set; }
    }

    /// <summary>
    /// Passes a blob's bytes through to whoever reads them, writing them to a staging file and
    /// hashing them as they go; once exactly the blob's size has passed and hashed to its digest,
    /// the file becomes the copy. A reader that stops early, or bytes that do not match, leave no copy.
    /// </summary>
    private sealed class CopyingStream : ReadOnlyStream
    {
        private readonly LocalBlobCopies _owner;
        private readonly Stream _source;
        private readonly bool _ownsSource;
        private readonly string _ns;
        private readonly Digest _digest;
        private readonly long _size;
        private readonly string _staging;
        private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        private FileStream? _file;
        private long _total;

        public CopyingStream(LocalBlobCopies owner, Stream source, bool ownsSource, string ns, Digest digest, long size)
        {
            _owner = owner;
            _source = source;
            _ownsSource = ownsSource;
            _ns = ns;
            _digest = digest;
            _size = size;
            _staging = Path.Combine(owner._staging, Guid.NewGuid().ToString("N"));
            try
            {
                _file = new FileStream(_staging, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous);
            }
            catch (IOException)
            {
                return; // no copy this time; the bytes still pass
            }

            if (size == 0)
            {
                Finish(); // nothing will be read
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await _source.ReadAsync(buffer, cancellationToken);
            if (_file is not null && read > 0)
            {
                _total += read;
                if (_total > _size)
                {
                    Abandon();
                }
                else
                {
                    try
                    {
                        await _file.WriteAsync(buffer[..read], cancellationToken);
                        _hash.AppendData(buffer.Span[..read]);
                        if (_total == _size)
                        {
                            Finish();
                        }
                    }
                    catch (IOException)
                    {
                        Abandon(); // a full or failing local disk costs the copy, never the transfer
                    }
                }
            }

            return read;
        }

        public override async ValueTask DisposeAsync()
        {
            Abandon();
            _hash.Dispose();
            if (_ownsSource)
            {
                await _source.DisposeAsync();
            }

            await base.DisposeAsync();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Abandon();
                _hash.Dispose();
                if (_ownsSource)
                {
                    _source.Dispose();
                }
            }

            base.Dispose(disposing);
        }

        private void Finish()
        {
            _file!.Dispose();
            _file = null;
            if (Digest.FromHash(_hash.GetHashAndReset()) == _digest)
            {
                _owner.Keep(_staging, _ns, _digest, _size);
            }
        }

        private void Abandon()
        {
            _file?.Dispose();
            _file = null;
            File.Delete(_staging); // absent already when it was kept or never made: a no-op
        }
    }
}
