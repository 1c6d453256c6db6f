using System.Buffers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using CacheService.Core.Index;
using CacheService.Core.Observation;

namespace CacheService.Core.Transfers;

/// <summary>The reading side: verified downloads that hold back their end, ranged reads, repair.</summary>
public sealed partial class LayerTransfers
{
    /// <summary>
    /// Streams a blob from <paramref name="offset"/>, hashing it whole (the bytes before the offset
    /// are read but not returned). The last chunk is held back until the whole blob has hashed to
    /// its digest, so a reader never receives a complete body that is wrong: bytes that do not
    /// match throw <see cref="BlobCorruptedException"/> instead of the last chunk, and a transport
    /// that promised a length fails the transfer. A missing blob throws
    /// <see cref="BlobNotFoundException"/>. Either way the entries that point at the blob are
    /// removed. Each chunk is valid only until the next one is requested.
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> DownloadAsync(
        string ns, Digest digest, long offset, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (offset < 0)
        {
            throw new InvalidFieldException("offset", "must not be negative");
        }

        // A resume past the end is refused before the whole blob is read and hashed for nothing.
        if (offset > 0 && await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken) is { } size && offset > size)
        {
            throw new InvalidFieldException("offset", $"is beyond the end of the blob ({size} bytes)");
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var read = new ReadProgress();
        var held = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            var heldLength = 0;
            await foreach (var chunk in ReadAsync(ns, digest, 0, long.MaxValue, hash, read, cancellationToken))
            {
                // A chunk goes out only once the next one has been read: then it is not the last.
                if (Visible(held, heldLength, read.Position - chunk.Length - heldLength, offset) is { IsEmpty: false } earlier)
                {
                    yield return earlier;
                    Sent(read, earlier.Length);
                }

                chunk.CopyTo(held);
                heldLength = chunk.Length;
            }

            if (offset > read.Position)
            {
                throw new InvalidFieldException("offset", $"is beyond the end of the blob ({read.Position} bytes)");
            }

            if (!await CheckAsync(ns, digest, hash, read.Position, BlobCheck.Read, cancellationToken))
            {
                throw new BlobCorruptedException(ns, digest);
            }

            if (Visible(held, heldLength, read.Position - heldLength, offset) is { IsEmpty: false } last)
            {
                yield return last;
                Sent(read, last.Length);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(held);
        }

        await backends.RecordUsageAsync(ns, new UsageDelta(BytesDownloaded: read.Sent), cancellationToken);
    }

    /// <summary>
    /// Reads a stored blob whole and hashes it against its digest, as a download would, but sends
    /// nothing and counts no download: the scrubber's check. A blob that does not match is purged
    /// with the entries that name it. False when it did not match; true when it did, or when it
    /// is gone (deleted since it was listed).
    /// </summary>
    public async Task<bool> ScrubAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        try
        {
            return await ReadCheckedAsync(ns, digest, BlobCheck.Scrub, null, cancellationToken);
        }
        catch (BlobNotFoundException)
        {
            return true;
        }
    }

    /// <summary>
    /// A small stored blob the server itself reads (a manifest it lists), verified whole and not
    /// counted as a client's download. A blob that does not match is purged and throws
    /// <see cref="BlobCorruptedException"/>; a missing one throws <see cref="BlobNotFoundException"/>.
    /// </summary>
    public async Task<byte[]> ReadInternalAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream();
        return await ReadCheckedAsync(ns, digest, BlobCheck.Read, content, cancellationToken)
            ? content.ToArray()
            : throw new BlobCorruptedException(ns, digest);
    }

    // Reads a blob whole (into `copy` when given), then checks it as CheckAsync does.
    private async Task<bool> ReadCheckedAsync(string ns, Digest digest, BlobCheck check, MemoryStream? copy, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var read = new ReadProgress();
        await foreach (var chunk in ReadAsync(ns, digest, 0, long.MaxValue, hash, read, cancellationToken))
        {
            copy?.Write(chunk.Span);
        }

        return await CheckAsync(ns, digest, hash, read.Position, check, cancellationToken);
    }

    // Compares what was hashed with the digest, tells the observer, and purges a blob that does not match.
    private async Task<bool> CheckAsync(string ns, Digest digest, IncrementalHash hash, long bytes, BlobCheck check, CancellationToken cancellationToken)
    {
        var intact = Digest.FromHash(hash.GetHashAndReset()) == digest;
        backends.Observer.BlobVerified(ns, digest, check, bytes, intact);
        if (!intact)
        {
            await backends.Index.RemoveEntriesReferencingAsync(ns, digest, cancellationToken);
            await backends.Blobs.DeleteAsync(ns, digest, cancellationToken);
        }

        return intact;
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
            Sent(read, chunk.Length);
        }

        await backends.RecordUsageAsync(ns, new UsageDelta(BytesDownloaded: read.Sent), cancellationToken);
    }

    // The part of a chunk read at `start` that lies at or after `offset`.
    private static ReadOnlyMemory<byte> Visible(byte[] chunk, int length, long start, long offset) =>
        chunk.AsMemory(0, length)[(int)Math.Clamp(offset - start, 0, length)..];

    private void Sent(ReadProgress progress, int bytes)
    {
        progress.Sent += bytes;
        backends.Observer.LayerBytes(TransferDirection.Download, bytes);
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
            await RepairMissingAsync(ns, digest, cancellationToken);
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

    // Removes the entries that point at a blob found missing. The check first keeps a request for
    // any digest nobody references from costing a scan of the namespace (Redis reads every bucket).
    private async Task RepairMissingAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        if (await backends.Index.IsBlobInUseAsync(ns, digest, cancellationToken))
        {
            await backends.Index.RemoveEntriesReferencingAsync(ns, digest, cancellationToken);
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
