using System.Net;
using CacheService.Core;
using CacheService.Core.Blobs;
using Minio.DataModel.Args;
using Minio.Exceptions;

namespace CacheService.Blobs.S3;

/// <summary>
/// Signing and sending requests, and the one place where S3 and SDK failures are sorted into
/// outages (<see cref="BackendUnavailableException"/>), missing blobs and everything else.
/// </summary>
public sealed partial class S3BlobStore
{
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
