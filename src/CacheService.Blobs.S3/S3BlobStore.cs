using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using CacheService.Core;
using CacheService.Core.Blobs;
using Minio;
using Minio.DataModel.Args;
using Minio.Exceptions;
using PreconditionFailedException = CacheService.Core.PreconditionFailedException;

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
/// <para>Failure: connection errors, timeouts and 5xx answers surface as
/// <see cref="BackendUnavailableException"/> (retries and the circuit breaker are added by a
/// decorator, not here).</para>
/// </remarks>
public sealed class S3BlobStore(IMinioClient minio, HttpClient http, S3BlobOptions options) : IBlobStore, IDirectTransfer
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
    });

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
    });

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

        var url = await Presign(HttpMethod.Put, ObjectName(ns, digest), cancellationToken);
        await using var body = new VerifyingReadStream(content, digest, size);
        using var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = new StreamContent(body, VerifyingReadStream.BufferSize) };
        request.Content.Headers.ContentLength = size;
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await Send(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        EnsureSuccess(response, ns, digest);
        return true;
    }

    /// <inheritdoc />
    public async Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
    {
        var url = await Presign(HttpMethod.Get, ObjectName(ns, digest), cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
        }

        var response = await Send(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        try
        {
            EnsureSuccess(response, ns, digest);
            return new ResponseStream(response, await response.Content.ReadAsStreamAsync(cancellationToken));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

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
        });
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredBlob> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = options.Prefix + "/";
        var items = minio.ListObjectsEnumAsync(
            new ListObjectsArgs().WithBucket(options.Bucket).WithPrefix(root).WithRecursive(true), cancellationToken);
        await using var cursor = items.GetAsyncEnumerator(cancellationToken);
        while (await Guard(async () => await cursor.MoveNextAsync()))
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
        }) ?? throw new PreconditionFailedException($"nothing was uploaded for upload id {uploadId}");

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
            });
            return true;
        }
        finally
        {
            await Guard(async () =>
            {
                await minio.RemoveObjectAsync(new RemoveObjectArgs().WithBucket(options.Bucket).WithObject(staging), CancellationToken.None);
                return true;
            });
        }
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

    // Staged direct uploads; "_" cannot start a namespace, so no blob lives under this name.
    private string StagingName(string ns, string uploadId) =>
        $"{options.Prefix}/_direct/{NamespaceName.Validate(ns, "namespace")}/{uploadId}";

    private string ObjectName(string ns, Digest digest) =>
        $"{options.Prefix}/{NamespaceName.Validate(ns, "namespace")}{Blobs}{digest.Hex}";

    private Task<string> Presign(HttpMethod method, string objectName, CancellationToken cancellationToken)
    {
        var expiry = (int)options.PresignExpiry.TotalSeconds;
        return Guard(() => method == HttpMethod.Put
            ? minio.PresignedPutObjectAsync(new PresignedPutObjectArgs().WithBucket(options.Bucket).WithObject(objectName).WithExpiry(expiry))
            : minio.PresignedGetObjectAsync(new PresignedGetObjectArgs().WithBucket(options.Bucket).WithObject(objectName).WithExpiry(expiry)));
    }

    private async Task<HttpResponseMessage> Send(HttpRequestMessage request, HttpCompletionOption completion, CancellationToken cancellationToken)
    {
        try
        {
            return await http.SendAsync(request, completion, cancellationToken);
        }
        catch (HttpRequestException e) when (e.InnerException is not CacheServiceException)
        {
            throw new BackendUnavailableException("blobs", e);
        }
        catch (HttpRequestException e) when (e.InnerException is CacheServiceException inner)
        {
            // The body (a VerifyingReadStream) refused to finish: report that, not the transport.
            throw inner;
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new BackendUnavailableException("blobs", e); // HttpClient's own timeout
        }
    }

    private static void EnsureSuccess(HttpResponseMessage response, string ns, Digest digest)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        throw response.StatusCode switch
        {
            HttpStatusCode.NotFound => new BlobNotFoundException(ns, digest),
            >= HttpStatusCode.InternalServerError or HttpStatusCode.TooManyRequests or HttpStatusCode.RequestTimeout =>
                new BackendUnavailableException("blobs", new HttpRequestException($"object store answered {(int)response.StatusCode}")),
            _ => new InvalidOperationException($"object store answered {(int)response.StatusCode} for {digest}"),
        };
    }

    // Minio reports outages as HttpRequestException, its own ConnectionException, or (for some
    // server errors) an ArgumentNullException from MinioException.GetMessage.
    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is HttpRequestException or ConnectionException or InternalClientException or ArgumentNullException
            || (e is TaskCanceledException && e.InnerException is TimeoutException))
        {
            throw new BackendUnavailableException("blobs", e);
        }
    }

    // Keeps the HTTP response alive while its body is read, and disposes both together.
    private sealed class ResponseStream(HttpResponseMessage response, Stream body) : ReadOnlyStream
    {

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await body.ReadAsync(buffer, cancellationToken);
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                throw new BackendUnavailableException("blobs", e);
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                body.Dispose();
                response.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
