using CacheService.Core;

namespace CacheService.Server.Registry;

/// <summary>
/// Blob uploads: monolithic (POST with <c>?digest=</c>), chunked (POST, PATCH..., PUT), status,
/// cancel, and cross-repository mounts. Bytes wait in <see cref="UploadSessions"/> until the
/// digest is named, then go through the core's verified upload.
/// </summary>
internal sealed partial class RegistryHandler
{
    private async Task StartUploadAsync(HttpContext http, string ns)
    {
        var query = http.Request.Query;
        if (Digest.TryParse(query["mount"], out var mounted) && NamespaceName.Validate(query["from"], "from") is var from && from != ns
            && await transfers.MountAsync(from, ns, mounted, http.RequestAborted))
        {
            Created(http, ns, mounted);
            return;
        }

        var id = sessions.Start(ns);
        if (Digest.TryParse(query["digest"], out var digest))
        {
            await sessions.AppendAsync(id, http.Request.Body, http.RequestAborted); // monolithic upload
            await CompleteAsync(http, ns, id, digest);
            return;
        }

        Accepted(http, ns, id, 0);
    }

    private async Task UploadAsync(HttpContext http, string ns, string id)
    {
        var size = sessions.Size(ns, id) ?? throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", $"no upload {id} in {ns}");
        switch (http.Request.Method)
        {
            case "GET":
                Accepted(http, ns, id, size);
                http.Response.StatusCode = 204;
                return;
            case "PATCH":
                if (http.Request.Headers.ContentRange.ToString() is { Length: > 0 } range && !range.StartsWith($"{size}-", StringComparison.Ordinal))
                {
                    throw new RegistryError(416, "BLOB_UPLOAD_INVALID", $"chunk {range} does not start at {size}");
                }

                Accepted(http, ns, id, await sessions.AppendAsync(id, http.Request.Body, http.RequestAborted));
                return;
            case "PUT":
                await sessions.AppendAsync(id, http.Request.Body, http.RequestAborted);
                var digest = Digest.TryParse(http.Request.Query["digest"], out var d) ? d : throw new RegistryError(400, "DIGEST_INVALID", "PUT needs ?digest=");
                await CompleteAsync(http, ns, id, digest);
                return;
            case "DELETE":
                sessions.End(id);
                http.Response.StatusCode = 204;
                return;
            default:
                await Unsupported(http);
                return;
        }
    }

    private async Task CompleteAsync(HttpContext http, string ns, string id, Digest digest)
    {
        try
        {
            await using var content = sessions.Open(id);
            await transfers.UploadAsync(ns, digest, content.Length, content, http.RequestAborted);
        }
        finally
        {
            sessions.End(id);
        }

        Created(http, ns, digest);
    }

    private static void Accepted(HttpContext http, string ns, string id, long size)
    {
        http.Response.StatusCode = 202;
        http.Response.Headers.Location = $"/v2/{ns}/blobs/uploads/{id}";
        http.Response.Headers.Range = $"0-{Math.Max(0, size - 1)}";
        http.Response.Headers["Docker-Upload-UUID"] = id;
    }

    private static void Created(HttpContext http, string ns, Digest digest)
    {
        http.Response.StatusCode = 201;
        http.Response.Headers.Location = $"/v2/{ns}/blobs/{digest}";
        http.Response.Headers[DigestHeader] = digest.Value;
    }
}
