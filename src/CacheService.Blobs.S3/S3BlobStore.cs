using System.Runtime.CompilerServices;
using CacheService.Core;
using CacheService.Core.Blobs;
using Minio;
using Minio.DataModel.Args;
using Minio.Exceptions;

namespace CacheService.Blobs.S3;

/// <summary>
/// <see cref="IBlobStore"/> in an S3-compatible bucket: <c>&lt;prefix&gt;/&lt;namespace&gt;/blobs/sha256/&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// <para>Bytes move over presigned URLs with <see cref="HttpClient"/>, and everything else (stat,
/// list, delete, signing) goes through the Minio SDK. The SDK's own transfers are avoided on
/// purpose: its ranged GET always fails (minio-dotnet#1342) and its PutObjectAsync buffers whole
/// streams (minio-dotnet#1138), while a streamed HTTP PUT and a ranged GET keep memory flat.</para>
/// <para>Visibility: an upload is one PUT whose body is a <see cref="VerifyingReadStream"/>. The
/// last bytes go out only after digest and size are confirmed; on a mismatch, a short or long
/// stream or a cancelled call the request is abandoned mid-body, and S3 stores nothing under the
/// final name. A single PUT is limited to 5 GiB by S3; larger layers are refused.</para>
/// <para>Files by concern: this one holds the store's calls; <c>S3DirectTransfer.cs</c> the
/// presigned transfers and their verified promotion; <c>S3ObjectNames.cs</c> where objects live;
/// <c>S3Http.cs</c> signing, sending and sorting failures.</para>
/// <para>Failure: connection errors, timeouts (<see cref="S3BlobOptions.IdleTimeout"/>, also
/// between the bytes of a transfer), SDK errors and any answer but a success or a 404 surface as
/// <see cref="BackendUnavailableException"/> (retries and the circuit breaker are added by a
/// decorator, not here).</para>
/// </remarks>
public sealed partial class S3BlobStore(IMinioClient minio, HttpClient http, S3BlobOptions options) : IBlobStore, IDirectTransfer
{
    /// <summary>The largest object one S3 PUT may create.</summary>
    public const long MaxSinglePutBytes = 5L << 30;

    private const string Blobs = "/blobs/sha256/";

    /// <summary>
    /// Builds the SDK client for <paramref name="options"/>. It keeps an HttpClient of its own:
    /// Build() sets the timeout of the one it is given, which must not touch the transfer client.
    /// </summary>
    public static IMinioClient CreateClient(S3BlobOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var endpoint = new Uri(options.Endpoint);
        return new MinioClient()
            .WithEndpoint(endpoint.Host, endpoint.Port)
            .WithSSL(endpoint.Scheme == "https")
            .WithCredentials(options.AccessKey, options.SecretKey)
            .WithRegion(options.Region)
            .WithTimeout((int)options.IdleTimeout.TotalMilliseconds)
            .Build();
    }

    /// <summary>Creates the bucket when it does not exist.</summary>
    public Task EnsureBucketAsync(CancellationToken cancellationToken) => Guard(async () =>
    {
        if (!await minio.BucketExistsAsync(new BucketExistsArgs().WithBucket(options.Bucket), cancellationToken))
        {
            await minio.MakeBucketAsync(new MakeBucketArgs().WithBucket(options.Bucket), cancellationToken);
        }

        return true;
    }, cancellationToken);

    /// <inheritdoc />
    public Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken) => Guard<long?>(async () =>
    {
        try
        {
            var stat = await minio.StatObjectAsync(new StatObjectArgs().WithBucket(options.Bucket).WithObject(ObjectName(ns, digest)), cancellationToken);
            return stat.Size;
        }
        catch (ObjectNotFoundException)
        {
            return null;
        }
    }, cancellationToken);

    /// <inheritdoc />
    public async Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken)
    {
        if (size > MaxSinglePutBytes)
        {
            throw new InvalidFieldException("size", $"is larger than the {MaxSinglePutBytes} bytes one S3 upload may hold");
        }

        if (await GetSizeAsync(ns, digest, cancellationToken) is not null)
        {
            return false;
        }

        using var response = await PutObjectAsync(ObjectName(ns, digest), new VerifyingReadStream(content, digest, size), size, cancellationToken);
        EnsureSuccess(response, ns, digest);
        return true;
    }

    /// <inheritdoc />
    public Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken) =>
        OpenObjectAsync(ObjectName(ns, digest), offset, response => EnsureSuccess(response, ns, digest), cancellationToken);

    /// <inheritdoc />
    public async Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        if (await GetSizeAsync(ns, digest, cancellationToken) is null)
        {
            return false;
        }

        return await Guard(async () =>
        {
            await minio.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(options.Bucket).WithObject(ObjectName(ns, digest)), cancellationToken);
            return true;
        }, cancellationToken);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredBlob> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = options.Prefix + "/";
        var items = minio.ListObjectsEnumAsync(
            new ListObjectsArgs().WithBucket(options.Bucket).WithPrefix(root).WithRecursive(true), cancellationToken);
        await using var cursor = items.GetAsyncEnumerator(cancellationToken);
        while (await Guard(async () => await cursor.MoveNextAsync(), cancellationToken))
        {
            var item = cursor.Current;
            var marker = item.Key.LastIndexOf(Blobs, StringComparison.Ordinal);
            if (item.IsDir || marker <= root.Length
                || !Digest.TryParse(Digest.Prefix + item.Key[(marker + Blobs.Length)..], out var digest))
            {
                continue;
            }

            var modified = item.LastModifiedDateTime is { } t ? new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)) : DateTimeOffset.MinValue;
            yield return new StoredBlob(item.Key[root.Length..marker], digest, (long)item.Size, modified);
        }
    }
}
