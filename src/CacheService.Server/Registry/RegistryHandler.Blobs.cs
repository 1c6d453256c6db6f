using CacheService.Core;
using CacheService.Server.Access;

namespace CacheService.Server.Registry;

/// <summary>Blobs: HEAD and GET (whole or ranged) through the core's transfers, so both are counted alike, a share of whole GETs verified (<see cref="IntegrityOptions.VerifiedRegistryReads"/>); DELETE.</summary>
internal sealed partial class RegistryHandler
{
    private async Task BlobAsync(HttpContext http, string ns, Digest digest)
    {
        switch (http.Request.Method)
        {
            case "HEAD":
            case "GET":
                var size = await transfers.SizeForReadAsync(ns, digest, http.RequestAborted) ?? throw new RegistryError(404, "BLOB_UNKNOWN", $"blob {digest} is not in {ns}");
                http.Response.Headers[DigestHeader] = digest.Value;
                http.Response.Headers.AcceptRanges = "bytes";
                http.Response.ContentType = "application/octet-stream";
                var range = ByteRange.Of(http.Request.Headers.Range.ToString(), size);
                http.Response.ContentLength = range.Length;
                if (!range.IsWhole(size))
                {
                    http.Response.StatusCode = 206;
                    http.Response.Headers.ContentRange = $"bytes {range.Start}-{range.End}/{size}";
                }

                if (http.Request.Method == "GET" && options.Value.RedirectBlobGets)
                {
                    // Straight from the object store, Range and all; the headers above described the blob.
                    var url = await direct.RedirectDownloadAsync(ns, digest, range.Length, http.RequestAborted);
                    http.Response.Clear();
                    http.Response.Headers[ApiVersionHeader] = "registry/2.0";
                    http.Response.Headers[DigestHeader] = digest.Value;
                    http.Response.StatusCode = StatusCodes.Status307TemporaryRedirect;
                    http.Response.Headers.Location = url.Url.AbsoluteUri;
                    return;
                }

                if (http.Request.Method == "GET")
                {
                    // The configured share of whole blobs is verified while it streams, as DownloadLayer
                    // always is; the rest, and every range, is sent as stored (the client checks the digest).
                    var chunks = range.IsWhole(size) && Random.Shared.NextDouble() < integrity.Value.VerifiedRegistryReads
                        ? transfers.DownloadAsync(ns, digest, 0, http.RequestAborted)
                        : transfers.ReadRangeAsync(ns, digest, range.Start, range.Length, http.RequestAborted);
                    await foreach (var chunk in chunks)
                    {
                        await http.Response.Body.WriteAsync(chunk, http.RequestAborted);
                    }
                }

                return;
            case "DELETE":
                if (!options.Value.AllowBlobDelete)
                {
                    throw new RegistryError(405, "UNSUPPORTED", "deleting blobs is turned off here (CacheService:Registry:AllowBlobDelete); blobs go when no manifest references them");
                }

                http.Response.StatusCode = await registry.DeleteBlobAsync(ns, digest, http.RequestAborted)
                    ? 202
                    : throw new RegistryError(404, "BLOB_UNKNOWN", $"blob {digest} is not in {ns}");
                return;
            default:
                await Unsupported(http);
                return;
        }
    }
}
