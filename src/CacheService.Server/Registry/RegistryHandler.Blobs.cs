using CacheService.Core;

namespace CacheService.Server.Registry;

/// <summary>Blobs: HEAD and GET (whole or ranged) through the core's transfers, so both are counted alike; DELETE.</summary>
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

                if (http.Request.Method == "GET")
                {
                    // A whole blob is verified while it streams, as DownloadLayer is; a range is served as stored.
                    var chunks = range.IsWhole(size)
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
