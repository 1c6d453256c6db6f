using System.Net;
using System.Net.Http.Headers;
using CacheService.Core;
using CacheService.Core.Blobs;
using Minio.DataModel.Args;
using Minio.Exceptions;
using PreconditionFailedException = CacheService.Core.PreconditionFailedException;

namespace CacheService.Blobs.S3;

/// <summary>
/// Presigned transfers (<see cref="IDirectTransfer"/>): a client moves a layer's bytes straight
/// to or from the bucket, and a direct upload becomes visible only after the server verified it.
/// </summary>
public sealed partial class S3BlobStore
{
    /// <inheritdoc />
    public async Task<PresignedUrl> PresignDownloadAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        new(new Uri(await Presign(HttpMethod.Get, ObjectName(ns, digest), cancellationToken)), ExpiresAt());

    /// <inheritdoc />
    public async Task<PresignedUrl> PresignUploadAsync(string ns, CancellationToken cancellationToken)
    {
        var uploadId = Guid.NewGuid().ToString("N");
        var url = await Presign(HttpMethod.Put, StagingName(ns, uploadId), cancellationToken);
        return new PresignedUrl(new Uri(url), ExpiresAt(), uploadId);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The client keeps its PUT URL until it expires, so it could overwrite the staged object
    /// while it is verified. The ETag closes that gap: the bytes are read with If-Match on the
    /// ETag seen first, and the server-side copy to the final name runs only if the ETag is
    /// still the same.
    /// </remarks>
    public async Task<bool> PromoteUploadAsync(string ns, string uploadId, Digest digest, long size, CancellationToken cancellationToken)
    {
        if (uploadId.Length != 32 || !uploadId.All(char.IsAsciiHexDigitLower))
        {
            throw new InvalidFieldException("upload_id", "is not an upload id this server handed out");
        }

        var staging = StagingName(ns, uploadId);
        var stat = await Guard<Minio.DataModel.ObjectStat?>(async () =>
        {
            try
            {
                return await minio.StatObjectAsync(new StatObjectArgs().WithBucket(options.Bucket).WithObject(staging), cancellationToken);
            }
            catch (ObjectNotFoundException)
            {
                return null;
            }
        }, cancellationToken) ?? throw new PreconditionFailedException($"nothing was uploaded for upload id {uploadId}");

        try
        {
            if (stat.Size != size)
            {
                throw new InvalidFieldException("size", $"the upload has {stat.Size} bytes, not the declared {size}");
            }

            if (await GetSizeAsync(ns, digest, cancellationToken) is not null)
            {
                return false;
            }

            await VerifyStagedAsync(staging, stat.ETag, digest, size, cancellationToken);
            await Guard(async () =>
            {
                var conditions = new Minio.DataModel.CopyConditions();
                conditions.SetMatchETag(stat.ETag);
                try
                {
                    await minio.CopyObjectAsync(
                    new CopyObjectArgs()
                        .WithBucket(options.Bucket).WithObject(ObjectName(ns, digest))
                        .WithCopyObjectSource(new CopySourceObjectArgs().WithBucket(options.Bucket).WithObject(staging).WithCopyConditions(conditions)),
                        cancellationToken);
                }
                catch (Minio.Exceptions.PreconditionFailedException)
                {
                    throw new PreconditionFailedException("the upload changed while it was verified; upload again");
                }

                return true;
            }, cancellationToken);
            return true;
        }
        finally
        {
            await Guard(async () =>
            {
                await minio.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(options.Bucket).WithObject(staging), CancellationToken.None);
                return true;
            }, CancellationToken.None);
        }
    }

    /// <inheritdoc />
    /// <remarks>
    /// A registry upload session goes whole or not at all: its objects are one group, stale only
    /// when the newest of them is (the marker, touched at every append), so a long upload never
    /// loses its first parts.
    /// </remarks>
    public async Task<int> SweepStagedUploadsAsync(DateTimeOffset olderThan, CancellationToken cancellationToken)
    {
        var items = minio.ListObjectsEnumAsync(
            new ListObjectsArgs().WithBucket(options.Bucket).WithPrefix(StagingRoot).WithRecursive(true), cancellationToken);
        var groups = new Dictionary<string, (DateTimeOffset Newest, List<string> Names)>(StringComparer.Ordinal);
        await using (var cursor = items.GetAsyncEnumerator(cancellationToken))
        {
            while (await Guard(async () => await cursor.MoveNextAsync(), cancellationToken))
            {
                if (cursor.Current.IsDir || cursor.Current.LastModifiedDateTime is not { } modified)
                {
                    continue;
                }

                var key = cursor.Current.Key;
                var group = IsSessionObject(key) ? key[..key.LastIndexOf('/')] : key;
                var stamp = new DateTimeOffset(DateTime.SpecifyKind(modified, DateTimeKind.Utc));
                var (newest, names) = groups.TryGetValue(group, out var known) ? known : (DateTimeOffset.MinValue, []);
                names.Add(key);
                groups[group] = (stamp > newest ? stamp : newest, names);
            }
        }

        var stale = groups.Values.Where(g => g.Newest <= olderThan).SelectMany(g => g.Names).ToList();

        foreach (var name in stale)
        {
            await Guard(async () =>
            {
                await minio.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(options.Bucket).WithObject(name), cancellationToken);
                return true;
            }, cancellationToken);
        }

        return stale.Count;
    }

    private async Task VerifyStagedAsync(string staging, string etag, Digest digest, long size, CancellationToken cancellationToken)
    {
        var url = await Presign(HttpMethod.Get, staging, cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.IfMatch.Add(new EntityTagHeaderValue(etag.StartsWith('"') ? etag : $"\"{etag}\""));
        using var response = await Send(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (response.StatusCode == HttpStatusCode.PreconditionFailed)
        {
            throw new PreconditionFailedException("the upload changed while it was verified; upload again");
        }

        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        await using var verified = new VerifyingReadStream(body, digest, size);
        await verified.CopyToAsync(Stream.Null, VerifyingReadStream.BufferSize, cancellationToken);
    }

    // The SDK signs with the wall clock, so the expiry it grants is measured on it too.
    private DateTimeOffset ExpiresAt() => DateTimeOffset.UtcNow + options.PresignExpiry;
}
