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
/// entries that point at it with it, so builders rebuild instead of failing on every use. The
/// reading side (downloads, ranges, repair) is in <c>LayerTransfers.Reads.cs</c>.
/// </remarks>
public sealed partial class LayerTransfers(CacheBackends backends, LimitsOptions limits, StorageGuard guard)
{
    // Bytes per chunk handed out: well under gRPC's default 4 MiB message limit of clients. Full
    // chunks matter: a store's stream returns what one socket read brought (often a few KiB), and
    // every chunk sent is a message or a write with its own framing and flush.
    private const int ChunkBytes = 512 * 1024;

    /// <summary>The size of a stored blob, or null.</summary>
    public Task<long?> SizeAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        backends.Blobs.GetSizeAsync(ns, digest, cancellationToken);

    /// <summary>
    /// The size of a blob a client is about to read, or null; an absent blob that entries still
    /// point at repairs the index first, so the next lookup misses cleanly instead of promising
    /// bytes that are gone.
    /// </summary>
    public async Task<long?> SizeForReadAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var size = await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken);
        if (size is null)
        {
            await RepairMissingAsync(ns, digest, cancellationToken);
        }

        return size;
    }

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

    /// <summary>
    /// Stores a blob, verified; returns false when it was already stored (the stream is not read).
    /// Refused with <see cref="QuotaExceededException"/> before any byte is read when the storage
    /// limits (<see cref="StorageGuard"/>) cannot take it.
    /// </summary>
    public async Task<bool> UploadAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken)
    {
        CheckSize(size, "header.size");
        if (await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken) is not null)
        {
            return false;
        }

        backends.Namespaces.AdmitWrite(ns);
        using (var room = guard.Reserve(ns, size))
        {
            await backends.Blobs.PutAsync(ns, digest, size, content, cancellationToken);
            room.Stored();
        }

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
}
