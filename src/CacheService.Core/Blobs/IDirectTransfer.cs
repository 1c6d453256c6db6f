namespace CacheService.Core.Blobs;

/// <summary>
/// What a blob store offers when clients may move bytes to and from it directly (presigned URLs),
/// so large layers bypass the server. A directly uploaded blob lands in a staging area and is
/// published under its digest only by <see cref="PromoteUploadAsync"/>, after the server has
/// verified it; until then no key can point at it.
/// </summary>
public interface IDirectTransfer
{
    /// <summary>A URL that GETs the stored blob until <see cref="PresignedUrl.ExpiresAt"/>.</summary>
    Task<PresignedUrl> PresignDownloadAsync(string ns, Digest digest, CancellationToken cancellationToken);

    /// <summary>A URL that PUTs one blob into a fresh staging slot named by the returned upload id.</summary>
    Task<PresignedUrl> PresignUploadAsync(string ns, CancellationToken cancellationToken);

    /// <summary>
    /// Verifies the staged upload against <paramref name="digest"/> and <paramref name="size"/> and
    /// publishes it; the staging copy is removed either way. Returns false when the blob was
    /// already stored. Throws <see cref="InvalidFieldException"/> on a mismatch and
    /// <see cref="PreconditionFailedException"/> when nothing was staged or the staged bytes
    /// changed while they were verified.
    /// </summary>
    Task<bool> PromoteUploadAsync(string ns, string uploadId, Digest digest, long size, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes staged uploads older than <paramref name="olderThan"/>: those a client put and never
    /// completed. Returns how many went.
    /// </summary>
    Task<int> SweepStagedUploadsAsync(DateTimeOffset olderThan, CancellationToken cancellationToken);
}

/// <summary>A presigned URL; <see cref="UploadId"/> is set for uploads.</summary>
public sealed record PresignedUrl(Uri Url, DateTimeOffset ExpiresAt, string? UploadId = null);
