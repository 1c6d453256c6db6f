using System.Net;
using System.Net.Http.Headers;
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
            : minio.PresignedGetObjectAsync(new PresignedGetObjectArgs().WithBucket(options.Bucket).WithObject(objectName).WithExpiry(expiry)),
            cancellationToken);
    }

    // PUTs `size` bytes of `body` to `objectName`. A store that stops taking bytes, or then does
    // not answer, for the idle timeout is an outage, not a request left hanging.
    private async Task<HttpResponseMessage> PutObjectAsync(string objectName, Stream body, long size, CancellationToken cancellationToken)
    {
        var url = await Presign(HttpMethod.Put, objectName, cancellationToken);
        using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await using var watched = new StallWatch(body, stalled, options.IdleTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Put, url) { Content = new StreamContent(watched, VerifyingReadStream.BufferSize) };
        request.Content.Headers.ContentLength = size;
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        try
        {
            return await Send(request, HttpCompletionOption.ResponseContentRead, stalled.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new BackendUnavailableException("blobs", new TimeoutException($"the object store took no bytes for {options.IdleTimeout}", e));
        }
    }

    // GETs `objectName` from `offset`; `ensure` judges the answer. A read that then brings nothing
    // for the idle timeout is an outage (ResponseStream).
    private async Task<Stream> OpenObjectAsync(string objectName, long offset, Action<HttpResponseMessage> ensure, CancellationToken cancellationToken)
    {
        var url = await Presign(HttpMethod.Get, objectName, cancellationToken);
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (offset > 0)
        {
            request.Headers.Range = new RangeHeaderValue(offset, null);
        }

        var response = await Send(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        try
        {
            ensure(response);
            return new ResponseStream(response, await response.Content.ReadAsStreamAsync(cancellationToken), options.IdleTimeout);
        }
        catch
        {
            response.Dispose();
            throw;
        }
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

        // Anything else (5xx, throttling, and 4xx such as 403 for expired credentials or a wrong
        // clock) means the store cannot serve us now: an outage the breaker counts, not a bug.
        throw response.StatusCode == HttpStatusCode.NotFound
            ? new BlobNotFoundException(ns, digest)
            : new BackendUnavailableException("blobs", new HttpRequestException($"object store answered {(int)response.StatusCode} for {digest}"));
    }

    // Minio reports outages as HttpRequestException, AuthorizationException (a refused key), any
    // of its MinioException kinds (the ones a caller expects, such as ObjectNotFoundException, are
    // caught inside the call), an XmlException for a body that is not S3's XML, or (for some server
    // errors) an ArgumentNullException from MinioException.GetMessage. Its own timeout
    // (WithTimeout) surfaces as a cancellation the caller did not ask for.
    private static async Task<T> Guard<T>(Func<Task<T>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (e is HttpRequestException or MinioException or AuthorizationException or System.Xml.XmlException or IOException or ArgumentNullException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new BackendUnavailableException("blobs", e);
        }
    }

    // Keeps the HTTP response alive while its body is read, and disposes both together. A read
    // that brings nothing for the idle timeout is an outage: a stalled store must not hold a
    // download (and its client) forever.
    private sealed class ResponseStream(HttpResponseMessage response, Stream body, TimeSpan idleTimeout) : ReadOnlyStream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            using var stalled = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            stalled.CancelAfter(idleTimeout);
            try
            {
                return await body.ReadAsync(buffer, stalled.Token);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                throw new BackendUnavailableException("blobs", new TimeoutException($"the object store sent nothing for {idleTimeout}", e));
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

    // An upload's body that cancels the request when the store stops taking bytes: the clock runs
    // only while the bytes handed over wait for the store, not while they are read from our own
    // client (a slow builder is not a stalled store).
    private sealed class StallWatch(Stream inner, CancellationTokenSource stalled, TimeSpan idleTimeout) : ReadOnlyStream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            stalled.CancelAfter(Timeout.InfiniteTimeSpan);
            var read = await inner.ReadAsync(buffer, cancellationToken);
            stalled.CancelAfter(idleTimeout);
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}
