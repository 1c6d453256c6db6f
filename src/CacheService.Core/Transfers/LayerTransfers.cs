using System.Buffers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using CacheService.Core.Index;
using CacheService.Core.Observation;
using CacheService.Core.Options;

namespace CacheService.Core.Transfers;

/// <summary>
/// Layer bytes in and out of a namespace, for every transport: verified uploads, downloads that
/// verify and repair, ranged reads, cross-namespace mounts. Bytes moved are counted here (the
/// namespace's usage and the observer), so a byte counts the same over gRPC and over the registry.
/// </summary>
/// <remarks>
/// Repair: a blob found missing, or whose bytes no longer hash to their digest, takes the index
/// entries that point at it with it, so builders rebuild instead of failing on every use.
/// </remarks>
public sealed class LayerTransfers(CacheBackends backends, LimitsOptions limits)
{
    // Bytes per chunk handed out: well under gRPC's default 4 MiB message limit of clients. Full
    // chunks matter: a store's stream returns what one socket read brought (often a few KiB), and
    // every chunk sent is a message or a write with its own framing and flush.
    private const int ChunkBytes = 512 * 1024;

    /// <summary>The size of a stored blob, or null.</summary>
    public Task<long?> SizeAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        backends.Blobs.GetSizeAsync(ns, digest, cancellationToken);

    /// <summary>Sizes of the stored blobs among <paramref name="digests"/>; absent ones are left out.</summary>
    public async Task<IReadOnlyList<BlobRef>> StatAsync(string ns, IReadOnlyList<Digest> digests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(digests);
        var present = new List<BlobRef>();
        foreach (var digest in digests)
        {
            if (await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken) is { } size)
            {
                present.Add(new BlobRef(digest, size));
            }
        }

        return present;
    }

    /// <summary>Stores a blob, verified; returns false when it was already stored (the stream is not read).</summary>
    public async Task<bool> UploadAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken)
    {
        CheckSize(size, "header.size");
        if (await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken) is not null)
        {
            return false;
        }

        await backends.Blobs.PutAsync(ns, digest, size, content, cancellationToken);
        await CountedAsync(ns, TransferDirection.Upload, size, cancellationToken);
        return true;
    }

    /// <summary>
    /// Copies a blob from namespace <paramref name="from"/> into <paramref name="ns"/>, verified as
    /// any upload: namespaces are tenants and do not share blobs. False when <paramref name="from"/>
    /// does not hold it.
    /// </summary>
    public async Task<bool> MountAsync(string from, string ns, Digest digest, CancellationToken cancellationToken)
    {
        if (await backends.Blobs.GetSizeAsync(from, digest, cancellationToken) is not { } size)
        {
            return false;
        }

        await using var source = await backends.Blobs.OpenReadAsync(from, digest, 0, cancellationToken);
        await UploadAsync(ns, digest, size, source, cancellationToken);
        return true;
    }

    /// <summary>
    /// Streams a blob from <paramref name="offset"/>, hashing it whole (the bytes before the offset
    /// are read but not returned). A missing blob throws <see cref="BlobNotFoundException"/>; bytes
    /// that do not hash to the digest throw <see cref="BlobCorruptedException"/> after the last
    /// chunk. Either way the entries that point at the blob are removed. Each chunk is valid only
    /// until the next one is requested.
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> DownloadAsync(
        string ns, Digest digest, long offset, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (offset < 0)
        {
            throw new InvalidFieldException("offset", "must not be negative");
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var read = new ReadProgress();
        await foreach (var chunk in ReadAsync(ns, digest, 0, long.MaxValue, hash, read, cancellationToken))
        {
            var skip = (int)Math.Clamp(offset - (read.Position - chunk.Length), 0, chunk.Length);
            if (skip < chunk.Length)
            {
                yield return chunk[skip..];
                read.Sent += chunk.Length - skip;
                backends.Observer.LayerBytes(TransferDirection.Download, chunk.Length - skip);
            }
        }

        if (offset > read.Position)
        {
            throw new InvalidFieldException("offset", $"is beyond the end of the blob ({read.Position} bytes)");
        }

        if (Digest.FromHash(hash.GetHashAndReset()) != digest)
        {
            await backends.Index.RemoveEntriesReferencingAsync(ns, digest, cancellationToken);
            await backends.Blobs.DeleteAsync(ns, digest, cancellationToken);
            throw new BlobCorruptedException(ns, digest);
        }

        await backends.RecordUsageAsync(ns, new UsageDelta(BytesDownloaded: read.Sent), cancellationToken);
    }

    /// <summary>
    /// Streams <paramref name="length"/> bytes of a blob from <paramref name="start"/> as stored (a
    /// range cannot be verified without reading the whole blob). Counted like a download; a
    /// missing blob repairs the index as <see cref="DownloadAsync"/> does.
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadRangeAsync(
        string ns, Digest digest, long start, long length, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var read = new ReadProgress();
        await foreach (var chunk in ReadAsync(ns, digest, start, length, null, read, cancellationToken))
        {
            yield return chunk;
            read.Sent += chunk.Length;
            backends.Observer.LayerBytes(TransferDirection.Download, chunk.Length);
        }

        await backends.RecordUsageAsync(ns, new UsageDelta(BytesDownloaded: read.Sent), cancellationToken);
    }

    internal void CheckSize(long size, string field)
    {
        if (size < 0 || size > limits.MaxLayerBytes)
        {
            throw new InvalidFieldException(field, $"must be between 0 and {limits.MaxLayerBytes} bytes");
        }
    }

    internal async Task CountedAsync(string ns, TransferDirection direction, long bytes, CancellationToken cancellationToken)
    {
        backends.Observer.LayerBytes(direction, bytes);
        var delta = direction == TransferDirection.Upload ? new UsageDelta(BytesUploaded: bytes) : new UsageDelta(BytesDownloaded: bytes);
        await backends.RecordUsageAsync(ns, delta, cancellationToken);
    }

    // Reads up to `length` bytes from `start` in full chunks, hashing them when asked; a missing
    // blob repairs the index before the exception reaches the caller.
    private async IAsyncEnumerable<ReadOnlyMemory<byte>> ReadAsync(
        string ns, Digest digest, long start, long length, IncrementalHash? hash, ReadProgress progress, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        Stream stream;
        try
        {
            stream = await backends.Blobs.OpenReadAsync(ns, digest, start, cancellationToken);
        }
        catch (BlobNotFoundException)
        {
            await backends.Index.RemoveEntriesReferencingAsync(ns, digest, cancellationToken);
            throw;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            await using (stream)
            {
                for (var left = length; left > 0;)
                {
                    var wanted = (int)Math.Min(ChunkBytes, left);
                    var read = await ReadChunkAsync(stream, buffer.AsMemory(0, wanted), cancellationToken);
                    if (read == 0)
                    {
                        break;
                    }

                    hash?.AppendData(buffer, 0, read);
                    progress.Position += read;
                    left -= read;
                    yield return buffer.AsMemory(0, read);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // The store's stream is read after the store call returned, outside the observed wrapper: a
    // backend that fails mid-stream is reported here.
    private async Task<int> ReadChunkAsync(Stream stream, Memory<byte> chunk, CancellationToken cancellationToken)
    {
        try
        {
            return await stream.ReadAtLeastAsync(chunk, chunk.Length, throwOnEndOfStream: false, cancellationToken);
        }
        catch (BackendUnavailableException e)
        {
            backends.Observer.BackendUnavailable(e.Backend, e.InnerException);
            throw;
        }
    }

    private sealed class ReadProgress
    {
        public long Position { get; set; }

        public long Sent { get; set; }
    }
}
