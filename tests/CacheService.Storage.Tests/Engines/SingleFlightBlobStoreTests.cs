using CacheService.Blobs.FileSystem;
using CacheService.Contracts;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;

namespace CacheService.Storage.Tests.Engines;

/// <summary>
/// Single-flight reads (issue 13's catalogue: 100 cold requests for one blob, one backend fetch)
/// over the filesystem engine, behind a gate that holds the first fetch open; and the whole blob
/// contract through the decorator, which must change nothing a caller can see.
/// </summary>
public sealed class SingleFlightBlobStoreTests : BlobStoreContract
{
    private readonly string _root = Directory.CreateTempSubdirectory("cs-single-flight-").FullName;
    private GatedStore? _gated;
    private SingleFlightBlobStore? _flights;
    private bool _spoolHasRoom = true;

    // The contract creates the store on first use.
    private GatedStore Gated => Store is not null ? _gated! : throw new InvalidOperationException();

    protected override IBlobStore CreateStore()
    {
        _gated = new GatedStore(new FileSystemBlobStore(Path.Combine(_root, "blobs")));
        return _flights = new SingleFlightBlobStore(_gated, Path.Combine(_root, "spool"), () => _spoolHasRoom);
    }

    protected override ILayerIndex CreateIndex(string directory, TimeProvider time) =>
        new SqliteLayerIndex(Path.Combine(directory, "index.db"), time);

    public override void Dispose()
    {
        base.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private string[] SpoolFiles() => Directory.GetFiles(Path.Combine(_root, "spool"));

    private async Task<(Digest Digest, byte[] Data)> StoredAsync(int size, int seed)
    {
        var data = Layers.Random(size, seed);
        var digest = Digest.Parse(Layers.DigestOf(data), "digest");
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        return (digest, data);
    }

    private static async Task<byte[]> ReadAllAsync(Task<Stream> opening)
    {
        await using var stream = await opening;
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task A_hundred_concurrent_reads_of_one_cold_blob_cost_one_fetch_and_each_gets_every_byte()
    {
        var (digest, data) = await StoredAsync(3_000_000, 1);
        Gated.Hold();
        var readers = Enumerable.Range(0, 100).Select(_ => ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct))).ToList(); // all join before the fetch opens
        Gated.Release();

        Assert.All(await Task.WhenAll(readers), bytes => Assert.Equal(data, bytes));
        Assert.Equal(1, Gated.Opens);
        Assert.Equal(0, _flights!.FetchesInFlight);
        Assert.Empty(SpoolFiles());

        await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct)); // a read after the fetch ended fetches anew
        await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 10, Ct)); // and ranged reads go straight to the store
        Assert.Equal(3, Gated.Opens);
    }

    [Fact]
    public async Task Without_room_on_the_disk_a_new_fetch_reads_the_store_directly_and_a_running_one_is_still_joined()
    {
        var (digest, data) = await StoredAsync(1_000_000, 5);
        Gated.Hold();
        var first = ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct)); // spools: there is room
        _spoolHasRoom = false;
        var joined = ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct));
        var (other, otherData) = await StoredAsync(1_000_000, 6);
        var direct = Store.OpenReadAsync(Ns, other, 0, Ct);
        Assert.Equal(1, _flights!.FetchesInFlight); // the direct read started none
        Gated.Release();

        Assert.Equal(otherData, await ReadAllAsync(direct));
        Assert.Equal(data, await first);
        Assert.Equal(data, await joined);
        Assert.Equal(2, Gated.Opens); // one fetch for the two readers of the first blob, one direct read
        Assert.Equal(0, _flights!.FetchesInFlight);
        Assert.Empty(SpoolFiles());
    }

    [Fact]
    public async Task A_fetch_every_reader_left_stops_and_leaves_no_spool_file()
    {
        var (digest, _) = await StoredAsync(3_000_000, 2);
        Gated.Hold();
        var streams = Enumerable.Range(0, 3).Select(_ => Store.OpenReadAsync(Ns, digest, 0, Ct)).ToList();
        Gated.Release();
        foreach (var stream in await Task.WhenAll(streams))
        {
            var first = new byte[1000];
            await stream.ReadAtLeastAsync(first, first.Length);
            await stream.DisposeAsync();
        }

        for (var attempt = 0; attempt < 200 && (_flights!.FetchesInFlight > 0 || SpoolFiles().Length > 0); attempt++)
        {
            await Task.Delay(25);
        }

        Assert.Equal(0, _flights!.FetchesInFlight);
        Assert.Empty(SpoolFiles());
    }

    [Fact]
    public async Task A_fetch_that_fails_midway_fails_every_reader_as_an_outage()
    {
        var (digest, _) = await StoredAsync(3_000_000, 3);
        Gated.Hold();
        Gated.FailAfter = 1_000_000;
        var readers = Enumerable.Range(0, 5).Select(_ => ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct))).ToList();
        Gated.Release();
        foreach (var reader in readers)
        {
            await Assert.ThrowsAsync<BackendUnavailableException>(() => reader);
        }

        Assert.Equal(1, Gated.Opens);
        Assert.Empty(SpoolFiles());
    }

    [Fact]
    public async Task Readers_that_joined_a_fetch_that_found_nothing_ask_the_store_themselves()
    {
        var data = Layers.Random(100_000, 4);
        var digest = Digest.Parse(Layers.DigestOf(data), "digest");
        Gated.Hold();
        Gated.AnswerAbsent = true; // the first open looked before the blob was stored
        var first = ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct));
        var second = ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct));
        await Gated.PutDirectlyAsync(Ns, digest, data);
        Gated.Release();

        await Assert.ThrowsAsync<BlobNotFoundException>(() => first);
        Assert.Equal(data, await second); // the answer from before the store did not reach a reader that came after
        Assert.Equal(2, Gated.Opens);
    }

    /// <summary>The real store, whose first open can be held at a gate (and then answer "absent"), whose reads can fail part-way, and whose opens are counted.</summary>
    private sealed class GatedStore(IBlobStore inner) : BlobStoreDecorator(inner)
    {
        private TaskCompletionSource? _gate; // taken by the first open
        private TaskCompletionSource? _held;
        private int _opens;

        public int Opens => Volatile.Read(ref _opens);

        public long FailAfter { get; set; } = long.MaxValue;

        public bool AnswerAbsent { get; set; }

        public void Hold() => _gate = _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _held?.SetResult();

        public Task<bool> PutDirectlyAsync(string ns, Digest digest, byte[] data) => Inner.PutAsync(ns, digest, data.Length, new MemoryStream(data), CancellationToken.None);

        public override async Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _opens);
            if (Interlocked.Exchange(ref _gate, null) is { } gate)
            {
                await gate.Task;
                if (AnswerAbsent)
                {
                    throw new BlobNotFoundException(ns, digest);
                }
            }

            var stream = await base.OpenReadAsync(ns, digest, offset, cancellationToken);
            return FailAfter == long.MaxValue ? stream : new FailingStream(stream, FailAfter);
        }
    }

    private sealed class FailingStream(Stream inner, long failAfter) : ReadOnlyStream
    {
        private long _read;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= failAfter)
            {
                throw new BackendUnavailableException("blobs", new IOException("connection reset mid-body"));
            }

            var read = await inner.ReadAsync(buffer, cancellationToken);
            _read += read;
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
