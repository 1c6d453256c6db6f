using CacheService.Core.Blobs;
using CacheService.Core.Observation;

namespace CacheService.Core.Transfers;

/// <summary>
/// Presigned transfers straight between a client and the object store, for layers too large to
/// relay. The server still decides what becomes visible: a direct upload is verified before it is
/// published, and counted then. The presigning store is not wrapped like the others, so its
/// outages are reported to the observer here.
/// </summary>
public sealed class DirectTransfers(CacheBackends backends, LayerTransfers transfers, StorageGuard guard)
{
    /// <summary>A URL that downloads a stored blob straight from the object store.</summary>
    public async Task<PresignedUrl> PresignDownloadAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var direct = Enabled();
        if (await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken) is null)
        {
            throw new BlobNotFoundException(ns, digest);
        }

        return await Unavailability.ReportAsync(direct.PresignDownloadAsync(ns, digest, cancellationToken), backends.Observer);
    }

    /// <summary>
    /// A URL for a registry client's blob GET, which then bypasses the server: the
    /// <paramref name="bytes"/> it will fetch are counted as downloaded now, as a relayed read's are.
    /// </summary>
    public async Task<PresignedUrl> RedirectDownloadAsync(string ns, Digest digest, long bytes, CancellationToken cancellationToken)
    {
        var url = await Unavailability.ReportAsync(Enabled().PresignDownloadAsync(ns, digest, cancellationToken), backends.Observer);
        await transfers.CountedAsync(ns, TransferDirection.Download, bytes, cancellationToken);
        return url;
    }

    /// <summary>A URL that uploads a blob straight to the object store, or null when it is already stored.</summary>
    public async Task<PresignedUrl?> PresignUploadAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var direct = Enabled();
        return await backends.Blobs.GetSizeAsync(ns, digest, cancellationToken) is null
            ? await Unavailability.ReportAsync(direct.PresignUploadAsync(ns, cancellationToken), backends.Observer)
            : null;
    }

    /// <summary>Verifies and publishes a direct upload; false when the blob was already stored.</summary>
    public async Task<bool> CompleteUploadAsync(string ns, string uploadId, Digest digest, long size, CancellationToken cancellationToken)
    {
        transfers.CheckSize(size, "size");
        backends.Namespaces.AdmitWrite(ns);
        using var room = guard.Reserve(ns, size);
        var published = await Unavailability.ReportAsync(Enabled().PromoteUploadAsync(ns, uploadId, digest, size, cancellationToken), backends.Observer);
        if (published)
        {
            room.Stored();
            await transfers.CountedAsync(ns, TransferDirection.Upload, size, cancellationToken);
        }

        return published;
    }

    private IDirectTransfer Enabled() =>
        backends.Direct ?? throw new PreconditionFailedException("direct transfer is not enabled on this server (CacheService:S3:DirectTransfer)");
}
