using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using Microsoft.Extensions.Time.Testing;

namespace CacheService.Contracts;

/// <summary>
/// The <see cref="IBlobStore"/> contract, written once and run against every engine.
/// </summary>
public abstract class BlobStoreContract : IDisposable
{
    protected BlobStoreContract()
    {
        Store = CreateStore();
        Ns = "t" + Guid.NewGuid().ToString("N")[..12] + "/blobs";
    }

    protected IBlobStore Store { get; }

    protected string Ns { get; }

    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>Creates the engine under test.</summary>
    protected abstract IBlobStore CreateStore();

    /// <summary>A real index in <paramref name="directory"/> for the orphan sweeper to ask (the embedded one will do).</summary>
    protected abstract ILayerIndex CreateIndex(string directory, TimeProvider time);

    public virtual void Dispose() => GC.SuppressFinalize(this);

    protected static byte[] Bytes(int size, int seed = 1)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    protected static async Task<byte[]> ReadAll(Stream stream)
    {
        await using (stream)
        {
            using var copy = new MemoryStream();
            await stream.CopyToAsync(copy);
            return copy.ToArray();
        }
    }

    [Fact]
    public async Task An_empty_upload_under_any_digest_but_the_empty_blobs_is_refused_and_stores_nothing()
    {
        var claimed = Digest.Of(Bytes(100, seed: 40));
        var e = await Assert.ThrowsAsync<InvalidFieldException>(() => Store.PutAsync(Ns, claimed, 0, new MemoryStream(), Ct));
        Assert.Equal("digest", e.Field);
        Assert.Null(await Store.GetSizeAsync(Ns, claimed, Ct));

        var real = Bytes(100, seed: 40); // the real bytes of that digest still go in afterwards
        Assert.True(await Store.PutAsync(Ns, claimed, real.Length, new MemoryStream(real), Ct));
        Assert.Equal(100, await Store.GetSizeAsync(Ns, claimed, Ct));

        var empty = Digest.Of([]);
        Assert.True(await Store.PutAsync(Ns, empty, 0, new MemoryStream(), Ct));
        Assert.Equal(0, await Store.GetSizeAsync(Ns, empty, Ct));
        Assert.Empty(await ReadAll(await Store.OpenReadAsync(Ns, empty, 0, Ct)));
    }

    [Fact]
    public async Task A_stored_blob_reads_back_identical_with_its_size()
    {
        var data = Bytes(300_000);
        var digest = Digest.Of(data);
        Assert.True(await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct));
        Assert.Equal(data.Length, await Store.GetSizeAsync(Ns, digest, Ct));
        Assert.Equal(data, await ReadAll(await Store.OpenReadAsync(Ns, digest, 0, Ct)));
    }

    [Fact]
    public async Task Reading_from_an_offset_returns_the_rest()
    {
        var data = Bytes(200_000);
        var digest = Digest.Of(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.Equal(data[123_457..], await ReadAll(await Store.OpenReadAsync(Ns, digest, 123_457, Ct)));
    }

    [Fact]
    public async Task An_empty_blob_is_a_blob()
    {
        var digest = Digest.Of([]);
        await Store.PutAsync(Ns, digest, 0, new MemoryStream(), Ct);
        Assert.Equal(0, await Store.GetSizeAsync(Ns, digest, Ct));
    }

    [Fact]
    public async Task Content_that_does_not_match_the_digest_is_refused_and_leaves_nothing()
    {
        var data = Bytes(100_000);
        var claimed = Digest.Of(Bytes(100_000, seed: 2));
        var e = await Assert.ThrowsAsync<InvalidFieldException>(() => Store.PutAsync(Ns, claimed, data.Length, new MemoryStream(data), Ct));
        Assert.Equal("digest", e.Field);
        Assert.Null(await Store.GetSizeAsync(Ns, claimed, Ct));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(Ns, claimed, 0, Ct));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(+1)]
    public async Task A_stream_shorter_or_longer_than_declared_is_refused_and_leaves_nothing(int difference)
    {
        var data = Bytes(50_000);
        var digest = Digest.Of(data);
        var e = await Assert.ThrowsAsync<InvalidFieldException>(() => Store.PutAsync(Ns, digest, data.Length + difference, new MemoryStream(data), Ct));
        Assert.Equal("size", e.Field);
        Assert.Null(await Store.GetSizeAsync(Ns, digest, Ct));
    }

    [Fact]
    public async Task A_cancelled_upload_leaves_nothing()
    {
        var data = Bytes(1_000_000);
        var digest = Digest.Of(data);
        using var cancel = new CancellationTokenSource();
        var stream = new CancelAfterStream(new MemoryStream(data), 300_000, cancel);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.PutAsync(Ns, digest, data.Length, stream, cancel.Token));
        Assert.Null(await Store.GetSizeAsync(Ns, digest, Ct));
    }

    [Fact]
    public async Task Storing_a_blob_again_ends_early_without_reading()
    {
        var data = Bytes(10_000);
        var digest = Digest.Of(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.False(await Store.PutAsync(Ns, digest, data.Length, new UnreadableStream(), Ct));
    }

    [Fact]
    public async Task A_missing_blob_is_not_found()
    {
        var digest = Digest.Of("never stored"u8);
        Assert.Null(await Store.GetSizeAsync(Ns, digest, Ct));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(Ns, digest, 0, Ct));
        Assert.False(await Store.DeleteAsync(Ns, digest, Ct));
    }

    [Fact]
    public async Task A_deleted_blob_is_gone()
    {
        var data = Bytes(1000);
        var digest = Digest.Of(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.True(await Store.DeleteAsync(Ns, digest, Ct));
        Assert.Null(await Store.GetSizeAsync(Ns, digest, Ct));
    }

    [Fact]
    public async Task Namespaces_are_isolated()
    {
        var data = Bytes(1000);
        var digest = Digest.Of(data);
        await Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct);
        Assert.Null(await Store.GetSizeAsync(Ns + "/other", digest, Ct));
    }

    [Fact]
    public async Task Listing_shows_every_stored_blob_with_its_namespace_and_size()
    {
        var a = Bytes(1000, seed: 11);
        var b = Bytes(2000, seed: 12);
        var before = DateTimeOffset.UtcNow.AddMinutes(-5);
        await Store.PutAsync(Ns, Digest.Of(a), a.Length, new MemoryStream(a), Ct);
        await Store.PutAsync(Ns + "/sub", Digest.Of(b), b.Length, new MemoryStream(b), Ct);

        var listed = new List<StoredBlob>();
        await foreach (var blob in Store.ListAsync(Ct))
        {
            if (blob.Namespace.StartsWith(Ns, StringComparison.Ordinal))
            {
                listed.Add(blob);
            }
        }

        Assert.Equal(2, listed.Count);
        Assert.Contains(listed, x => x.Namespace == Ns && x.Digest == Digest.Of(a) && x.Size == 1000);
        Assert.Contains(listed, x => x.Namespace == Ns + "/sub" && x.Digest == Digest.Of(b) && x.Size == 2000);
        Assert.All(listed, x => Assert.True(x.LastModified > before && x.LastModified < DateTimeOffset.UtcNow.AddMinutes(5)));
    }

    [Fact]
    public async Task The_orphan_sweeper_deletes_only_old_blobs_no_entry_uses()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var grace = TimeSpan.FromMinutes(10);
        var directory = Directory.CreateTempSubdirectory("cs-sweep-").FullName;
        try
        {
            var index = CreateIndex(directory, time);
            using var disposeIndex = index as IDisposable;
            var sweeper = new OrphanSweeper(index, Store, time);
            var used = Bytes(1000, seed: 21);
            var orphan = Bytes(1000, seed: 22);
            await Store.PutAsync(Ns, Digest.Of(used), used.Length, new MemoryStream(used), Ct);
            await Store.PutAsync(Ns, Digest.Of(orphan), orphan.Length, new MemoryStream(orphan), Ct);
            var layer = new LayerDescriptor(Digest.Of(used), Digest.Of(orphan), used.Length, "application/vnd.oci.image.layer.v1.tar");
            await index.CommitAsync(Ns, NewEntry.ForLayer(Digest.Of("key"u8), layer), new NamespaceBudget(1 << 20, 1 << 20), Ct);

            Assert.Equal(0, await sweeper.SweepOnceAsync(grace, Ct)); // both younger than the grace period
            time.Advance(grace + TimeSpan.FromMinutes(1));
            await sweeper.SweepOnceAsync(grace, Ct);

            Assert.Null(await Store.GetSizeAsync(Ns, Digest.Of(orphan), Ct));
            Assert.Equal(used.Length, await Store.GetSizeAsync(Ns, Digest.Of(used), Ct));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Concurrent_uploads_of_one_blob_store_it_once()
    {
        var data = Bytes(500_000);
        var digest = Digest.Of(data);
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Store.PutAsync(Ns, digest, data.Length, new MemoryStream(data), Ct))));
        Assert.Contains(true, results);
        Assert.Equal(data, await ReadAll(await Store.OpenReadAsync(Ns, digest, 0, Ct)));
    }

    private sealed class UnreadableStream : MemoryStream
    {
        public override int Read(byte[] buffer, int offset, int count) => throw new InvalidOperationException("must not be read");
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => throw new InvalidOperationException("must not be read");
    }

    private sealed class CancelAfterStream(Stream inner, long limit, CancellationTokenSource cancel) : MemoryStream
    {
        private long _read;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_read >= limit)
            {
                await cancel.CancelAsync();
                cancellationToken.ThrowIfCancellationRequested();
            }

            var n = await inner.ReadAsync(buffer, cancellationToken);
            _read += n;
            return n;
        }
    }
}
