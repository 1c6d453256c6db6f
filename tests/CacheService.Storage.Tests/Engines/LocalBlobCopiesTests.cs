using CacheService.Blobs.FileSystem;
using CacheService.Contracts;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;

namespace CacheService.Storage.Tests.Engines;

/// <summary>
/// Local copies in front of a remote store (here a second file system standing in for S3): the
/// whole blob contract through the decorator, which must change nothing a caller can see, and what
/// it adds: bytes served from the copy, the remote store still the truth about what exists.
/// </summary>
public sealed class LocalBlobCopiesTests : BlobStoreContract
{
    private const long Budget = 2_500_000;

    private readonly string _root = Directory.CreateTempSubdirectory("cs-local-copies-").FullName;
    private FileSystemBlobStore? _remote;
    private LocalBlobCopies? _copies;
    private bool _hasRoom = true;

    private FileSystemBlobStore Remote => Store is not null ? _remote! : throw new InvalidOperationException();

    private LocalBlobCopies Copies => Store is not null ? _copies! : throw new InvalidOperationException();

    protected override IBlobStore CreateStore()
    {
        _remote = new FileSystemBlobStore(Path.Combine(_root, "remote"));
        return _copies = new LocalBlobCopies(_remote, Path.Combine(_root, "local"), Budget, () => _hasRoom);
    }

    protected override ILayerIndex CreateIndex(string directory, TimeProvider time) =>
        new SqliteLayerIndex(Path.Combine(directory, "index.db"), time);

    public override void Dispose()
    {
        base.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private static Digest DigestOf(byte[] data) => Digest.Parse(Layers.DigestOf(data), "digest");

    private static async Task<byte[]> ReadAllAsync(Task<Stream> opening)
    {
        await using var stream = await opening;
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy);
        return copy.ToArray();
    }

    // Rewrites the remote store's bytes of a blob (same size): a read that still gets the right bytes read the copy.
    private async Task RotRemoteAsync(Digest digest, int size)
    {
        await Remote.DeleteAsync(Ns, digest, Ct);
        var other = Layers.Random(size, 999);
        var path = Path.Combine(_root, "remote", Ns, "blobs", "sha256", digest.Hex);
        await File.WriteAllBytesAsync(path, other);
    }

    private string[] StagingFiles() => Directory.GetFiles(Path.Combine(_root, "local", "staging"));

    [Fact]
    public async Task A_pushed_blob_is_read_back_from_its_copy()
    {
        var data = Layers.Random(1_000_000, 1);
        var digest = DigestOf(data);
        Assert.True(await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct));
        Assert.Equal(data.Length, Copies.Bytes);

        await RotRemoteAsync(digest, data.Length);
        Assert.Equal(data, await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct)));
        Assert.Equal(data[600_000..], await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 600_000, Ct)));
        Assert.Equal(2, Copies.ReadsFromCopies);
        Assert.Empty(StagingFiles());
    }

    [Fact]
    public async Task A_whole_read_leaves_a_copy_and_one_stopped_early_or_from_an_offset_does_not()
    {
        var data = Layers.Random(1_000_000, 2);
        var digest = DigestOf(data);
        await Remote.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);

        await using (var partial = await Store.OpenReadAsync(Ns, digest, 0, Ct))
        {
            await partial.ReadExactlyAsync(new byte[1000], Ct);
        }

        Assert.Equal(data[10..], await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 10, Ct)));
        Assert.Equal(0, Copies.Bytes);
        Assert.Empty(StagingFiles());

        Assert.Equal(data, await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct)));
        Assert.Equal(data.Length, Copies.Bytes);
        await RotRemoteAsync(digest, data.Length);
        Assert.Equal(data, await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct)));
    }

    [Fact]
    public async Task Bytes_that_do_not_hash_to_the_digest_are_never_kept()
    {
        var data = Layers.Random(500_000, 3);
        var digest = DigestOf(data);
        await Remote.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        await RotRemoteAsync(digest, data.Length);

        Assert.NotEqual(data, await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct))); // served as stored: the reader verifies
        Assert.Equal(0, Copies.Bytes);
        Assert.Empty(StagingFiles());
    }

    [Fact]
    public async Task The_remote_store_decides_what_exists_whatever_copies_are_held()
    {
        var data = Layers.Random(200_000, 4);
        var digest = DigestOf(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);

        // Deleted behind this replica's back (another replica's collector): never served from the copy.
        await Remote.DeleteAsync(Ns, digest, Ct);
        Assert.Null(await Store.GetSizeAsync(Ns, digest, Ct));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(Ns, digest, 0, Ct));

        // Deleted through it: the copy goes too.
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.True(await Store.DeleteAsync(Ns, digest, Ct));
        Assert.Equal(0, Copies.Bytes);
    }

    [Fact]
    public async Task A_size_the_remote_store_just_gave_stands_for_the_one_read_that_follows()
    {
        var data = Layers.Random(200_000, 5);
        var digest = DigestOf(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.Equal(data.Length, await Store.GetSizeAsync(Ns, digest, Ct));

        await Remote.DeleteAsync(Ns, digest, Ct); // right after the size was given
        Assert.Equal(data, await ReadAllAsync(Store.OpenReadAsync(Ns, digest, 0, Ct)));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(Ns, digest, 0, Ct)); // the next read asks again
    }

    [Fact]
    public async Task Housekeeping_reads_check_the_remote_store_and_leave_no_copy()
    {
        var kept = Layers.Random(300_000, 6);
        await Store.PutAsync(Ns, DigestOf(kept), kept.Length, new MemoryStream(kept), Ct);
        var cold = Layers.Random(300_000, 7);
        await Remote.PutAsync(Ns, DigestOf(cold), cold.Length, new MemoryStream(cold), Ct);
        await RotRemoteAsync(DigestOf(kept), kept.Length);

        var (rotten, read) = await Task.Run(async () =>
        {
            BackgroundReads.Mark();
            return (await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(kept), 0, Ct)), await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(cold), 0, Ct)));
        });
        Assert.NotEqual(kept, rotten); // the store of record's bytes, not the copy's
        Assert.Equal(cold, read);
        Assert.Equal(kept.Length, Copies.Bytes); // the cold blob was not copied
        Assert.Equal(kept, await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(kept), 0, Ct))); // a build's read still uses the copy
    }

    [Fact]
    public async Task Copies_keep_to_their_budget_least_recently_used_first_and_to_the_disk_floor()
    {
        var blobs = Enumerable.Range(10, 3).Select(seed => Layers.Random(1_000_000, seed)).ToList();
        await Store.PutAsync(Ns, DigestOf(blobs[0]), blobs[0].Length, new MemoryStream(blobs[0]), Ct);
        await Store.PutAsync(Ns, DigestOf(blobs[1]), blobs[1].Length, new MemoryStream(blobs[1]), Ct);
        await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(blobs[0]), 0, Ct)); // the first is now the more recent
        await Store.PutAsync(Ns, DigestOf(blobs[2]), blobs[2].Length, new MemoryStream(blobs[2]), Ct);

        Assert.Equal(2_000_000, Copies.Bytes);
        await RotRemoteAsync(DigestOf(blobs[1]), blobs[1].Length); // the evicted one reads from the remote store again
        Assert.NotEqual(blobs[1], await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(blobs[1]), 0, Ct)));
        await RotRemoteAsync(DigestOf(blobs[0]), blobs[0].Length);
        Assert.Equal(blobs[0], await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(blobs[0]), 0, Ct)));

        var larger = Layers.Random((int)Budget + 1, 13);
        await Store.PutAsync(Ns, DigestOf(larger), larger.Length, new MemoryStream(larger), Ct);
        _hasRoom = false;
        var refused = Layers.Random(1000, 14);
        await Store.PutAsync(Ns, DigestOf(refused), refused.Length, new MemoryStream(refused), Ct);
        Assert.Equal(2_000_000, Copies.Bytes); // neither one past the budget nor one past the disk floor was copied
        Assert.Equal(larger, await ReadAllAsync(Store.OpenReadAsync(Ns, DigestOf(larger), 0, Ct)));
    }
}
