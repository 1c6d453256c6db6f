using CacheService.Core;
using CacheService.Core.Blobs;

namespace CacheService.Testing;

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
