using CacheService.Blobs.FileSystem;
using CacheService.Contracts;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;

namespace CacheService.Storage.Tests.Engines;

/// <summary>The blob contract on the embedded filesystem engine.</summary>
public sealed class FileSystemBlobStoreTests : BlobStoreContract
{
    private string? _root;

    protected override IBlobStore CreateStore()
    {
        _root ??= Directory.CreateTempSubdirectory("cs-blobs-").FullName;
        return new FileSystemBlobStore(_root);
    }

    protected override ILayerIndex CreateIndex(string directory, TimeProvider time) =>
        new SqliteLayerIndex(Path.Combine(directory, "index.db"), time);

    public override void Dispose()
    {
        base.Dispose();
        Directory.Delete(_root!, recursive: true);
    }

    [Fact]
    public async Task Blobs_live_under_namespace_blobs_sha256_hex_and_failed_uploads_leave_no_staging_file()
    {
        var data = Bytes(1000);
        var digest = Digest.Of(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.True(File.Exists(Path.Combine(_root!, Ns, "blobs", "sha256", digest.Hex)));

        await Assert.ThrowsAsync<InvalidFieldException>(() => Store.PutAsync(Ns, Digest.Of("x"u8), data.Length, new MemoryStream(data), Ct));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root!, ".uploads")));
    }

    [Fact]
    public async Task Leftover_uploads_from_a_crash_are_removed_at_start()
    {
        var leftover = Path.Combine(_root!, ".uploads", "crashed");
        await File.WriteAllTextAsync(leftover, "partial");
        _ = new FileSystemBlobStore(_root!);
        Assert.False(File.Exists(leftover));
    }

    [Fact]
    public async Task A_put_flushes_the_directory_of_the_new_name_after_the_rename_and_every_directory_it_created()
    {
        var flushed = new List<(string Directory, bool BlobVisible)>();
        var root = _root!; // the contract's store was created there
        var data = Bytes(100);
        var digest = Digest.Of(data);
        var blobs = Path.Combine(root, "team", "main", "blobs", "sha256");
        var store = new FileSystemBlobStore(root, d => flushed.Add((d, File.Exists(Path.Combine(blobs, digest.Hex)))));

        await store.PutAsync("team/main", digest, data.Length, new MemoryStream(data), Ct);
        string[] firstTime = [blobs, Path.GetDirectoryName(blobs)!, Path.Combine(root, "team", "main"), Path.Combine(root, "team"), root];
        Assert.Equal(firstTime.Select(d => (d, true)), flushed);

        flushed.Clear();
        var other = Bytes(200);
        await store.PutAsync("team/main", Digest.Of(other), other.Length, new MemoryStream(other), Ct);
        Assert.Equal([blobs], flushed.Select(f => f.Directory)); // the directories exist: only the one that gained a name
    }

    [Fact]
    public void Flushing_a_directory_reaches_the_kernel_and_fails_loudly_on_what_is_no_directory()
    {
        DirectorySync.Flush(_root!);
        var file = Path.Combine(_root!, "plain-file");
        File.WriteAllText(file, "x");
        Assert.Contains(file, Assert.Throws<IOException>(() => DirectorySync.Flush(file)).Message, StringComparison.Ordinal);
        Assert.Throws<IOException>(() => DirectorySync.Flush(Path.Combine(_root!, "missing")));
    }
}

/// <summary>
/// Memory stays flat whatever the blob size: allocations while storing a 256 MiB blob stay far
/// below its size. Runs alone so other tests' allocations do not count.
/// </summary>
[Collection(nameof(MemoryMeasurement))]
public sealed class FileSystemBlobStoreMemoryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cs-blobs-mem-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Storing_a_large_blob_allocates_far_less_than_its_size()
    {
        const long size = 256L << 20;
        var digest = GeneratedBlobStream.DigestOf(size);
        var store = new FileSystemBlobStore(_root);

        var before = GC.GetTotalAllocatedBytes(precise: true);
        await store.PutAsync("mem", digest, size, new GeneratedBlobStream(size), CancellationToken.None);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(size, await store.GetSizeAsync("mem", digest, CancellationToken.None));
        Assert.True(allocated < 8L << 20, $"allocated {allocated} bytes to store {size}");
    }
}

[CollectionDefinition(nameof(MemoryMeasurement), DisableParallelization = true)]
public sealed class MemoryMeasurement;
