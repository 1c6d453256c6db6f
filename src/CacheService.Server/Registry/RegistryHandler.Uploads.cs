using CacheService.Core;
using CacheService.Core.Access;
using CacheService.Server.Access;

namespace CacheService.Server.Registry;

/// <summary>
/// Blob uploads: monolithic (POST with <c>?digest=</c>), chunked (POST, PATCH..., PUT), status,
/// cancel, and cross-repository mounts. Bytes wait in <see cref="UploadSessions"/> (on this replica,
/// or in the object store for every replica) until the digest is named, then go through the core's
/// verified upload.
/// </summary>
internal sealed partial class RegistryHandler
{
    private async Task StartUploadAsync(HttpContext http, string ns)
    {
        var query = http.Request.Query;
        // A mount copies from another repository, so it needs read there; a mount that cannot be
        // made (no or a bad `from`, no read, no such blob) opens an upload instead, as the spec says.
        if (Digest.TryParse(query["mount"], out var mounted) && query["from"].ToString() is var from && NamespaceName.IsValid(from) && from != ns
            && http.Caller().Allows(AccessLevel.Read, from)
            && await transfers.MountAsync(from, ns, mounted, http.RequestAborted))
        {
            Created(http, ns, mounted);
            return;
        }

        var monolithic = Digest.TryParse(query["digest"], out var digest);
        if (monolithic && http.Request.ContentLength is > 0 and var length)
        {
            await StoreAsync(http, ns, digest, length); // monolithic upload: no session needed
            return;
        }

        var session = await sessions.StartAsync(ns, http.RequestAborted);
        try
        {
            if (monolithic)
            {
                await CompleteAsync(http, session, digest); // monolithic upload of unknown length
                return;
            }

            Accepted(http, ns, session.Id, 0);
        }
        finally
        {
            sessions.Release(session);
        }
    }

    private async Task UploadAsync(HttpContext http, string ns, string id)
    {
        var session = await sessions.TakeAsync(ns, id, http.RequestAborted) ?? throw new RegistryError(404, "BLOB_UPLOAD_UNKNOWN", $"no upload {id} in {ns}");
        try
        {
            await UploadAsync(http, ns, session);
        }
        finally
        {
            sessions.Release(session);
        }
    }

    private async Task UploadAsync(HttpContext http, string ns, UploadSessions.Session session)
    {
        switch (http.Request.Method)
        {
            case "GET":
                Accepted(http, ns, session.Id, session.Size);
                http.Response.StatusCode = 204;
                return;
            case "PATCH":
                if (http.Request.Headers.ContentRange.ToString() is { Length: > 0 } range && !range.StartsWith($"{session.Size}-", StringComparison.Ordinal))
                {
                    throw new RegistryError(416, "BLOB_UPLOAD_INVALID", $"chunk {range} does not start at {session.Size}");
                }

                Accepted(http, ns, session.Id, await sessions.AppendAsync(session, http.Request.Body, http.Request.ContentLength, http.RequestAborted));
                return;
            case "PUT":
                var digest = Digest.TryParse(http.Request.Query["digest"], out var d) ? d : throw new RegistryError(400, "DIGEST_INVALID", "PUT needs ?digest=");
                await CompleteAsync(http, session, digest);
                return;
            case "DELETE":
                await sessions.EndAsync(session);
                http.Response.StatusCode = 204;
                return;
            default:
                await Unsupported(http);
                return;
        }
    }

    // Appends the request's body and stores the whole, verified. The session ends whatever
    // happens: a body cut short or a digest that does not match its bytes leaves nothing.
    private async Task CompleteAsync(HttpContext http, UploadSessions.Session session, Digest digest)
    {
        try
        {
            if (session.Size == 0 && http.Request.ContentLength is > 0 and var length)
            {
                await StoreAsync(http, session.Namespace, digest, length); // POST, then PUT with the whole blob (containerd, BuildKit)
                return;
            }

            await sessions.AppendAsync(session, http.Request.Body, http.Request.ContentLength, http.RequestAborted);
            await using var content = await sessions.OpenAsync(session, http.RequestAborted);
            await transfers.UploadAsync(session.Namespace, digest, session.Size, content, http.RequestAborted);
        }
        finally
        {
            await sessions.EndAsync(session);
        }

        Created(http, session.Namespace, digest);
    }

    // A whole blob of known length in one request goes straight into the verified upload: staged
    // first, its bytes would be written twice and read once more (with S3, all three in the bucket).
    private async Task StoreAsync(HttpContext http, string ns, Digest digest, long length)
    {
        sessions.CheckRoom(ns, length);
        await transfers.UploadAsync(ns, digest, length, http.Request.Body, http.RequestAborted);

        // A blob stored already, or by a concurrent writer while this one waited, is not read
        // again; the client is still sending it, and answering first would cut its connection.
        await http.Request.Body.CopyToAsync(Stream.Null, http.RequestAborted);
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
