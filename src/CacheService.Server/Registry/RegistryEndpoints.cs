using System.Text.Json;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Options;
using CacheService.Core.Registry;
using CacheService.Server.Observability;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Registry;

/// <summary>
/// The OCI Distribution API (distribution-spec v1.1) under <c>/v2/</c> on the HTTP port, so that
/// builders that cache in a registry (buildah and podman <c>--cache-to</c>, kaniko
/// <c>--cache-repo</c>, BuildKit <c>type=registry</c>) use the cache unchanged. A repository is a
/// namespace; storage and semantics are <see cref="OciRegistry"/>'s. Errors use the spec's JSON
/// body and codes.
/// </summary>
internal static class RegistryEndpoints
{
    private const string ApiVersionHeader = "Docker-Distribution-API-Version";
    private const string DigestHeader = "Docker-Content-Digest";

    public static void MapRegistryEndpoints(this WebApplication app)
    {
        app.Map("/v2/{**path}", (HttpContext http, string? path) => HandleAsync(http, path ?? ""));
    }

    private static async Task HandleAsync(HttpContext http, string path)
    {
        http.Response.Headers[ApiVersionHeader] = "registry/2.0";
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodyLimit)
        {
            // Kestrel's 30 MB default would refuse layers; the cache's own limit applies instead.
            bodyLimit.MaxRequestBodySize = http.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxLayerBytes;
        }

        var status = StatusCodes.Status500InternalServerError; // what Kestrel answers for an unexpected failure
        try
        {
            await RouteAsync(http, path);
            status = http.Response.StatusCode;
        }
        catch (Exception e) when (Describe(e) is { } error)
        {
            status = error.Status;
            if (!http.Response.HasStarted)
            {
                http.Response.StatusCode = error.Status;
                await http.Response.WriteAsJsonAsync(new { errors = new[] { new { code = error.Code, message = error.Message } } });
            }
        }
        finally
        {
            http.RequestServices.GetRequiredService<CacheMetrics>().RegistryRequest(http.Request.Method, status);
        }
    }

    private static Task RouteAsync(HttpContext http, string path)
    {
        var method = http.Request.Method;
        if (path.Length == 0)
        {
            return http.Response.WriteAsJsonAsync(new { }); // the version check
        }

        if (Split(path, "/blobs/uploads") is { } uploads)
        {
            var id = uploads.Tail.Trim('/');
            return id.Length == 0 && method == "POST" ? StartUploadAsync(http, uploads.Ns)
                : id.Length > 0 ? UploadAsync(http, uploads.Ns, id)
                : Unsupported(http);
        }

        if (Split(path, "/blobs/") is { } blob)
        {
            return BlobAsync(http, blob.Ns, Digest.Parse(blob.Tail, "digest"));
        }

        if (Split(path, "/manifests/") is { } manifest)
        {
            return ManifestAsync(http, manifest.Ns, manifest.Tail);
        }

        if (Split(path, "/tags/list") is { Tail: "" } tags && method == "GET")
        {
            return TagsAsync(http, tags.Ns);
        }

        throw new RegistryError(404, "NOT_FOUND", $"no route for {method} /v2/{path}");
    }

    // "team/app/blobs/sha256:..." -> ("team/app", "sha256:..."); the repository name may hold slashes.
    private static (string Ns, string Tail)? Split(string path, string marker)
    {
        var at = path.LastIndexOf(marker, StringComparison.Ordinal);
        return at <= 0 ? null : (NamespaceName.Validate(path[..at], "name"), path[(at + marker.Length)..]);
    }

    private static async Task BlobAsync(HttpContext http, string ns, Digest digest)
    {
        var services = http.RequestServices;
        var blobs = services.GetRequiredService<IBlobStore>();
        var cache = services.GetRequiredService<LayerCache>();
        switch (http.Request.Method)
        {
            case "HEAD":
            case "GET":
                var size = await blobs.GetSizeAsync(ns, digest, http.RequestAborted) ?? throw new RegistryError(404, "BLOB_UNKNOWN", $"blob {digest} is not in {ns}");
                http.Response.Headers[DigestHeader] = digest.Value;
                http.Response.Headers.AcceptRanges = "bytes";
                http.Response.ContentType = "application/octet-stream";
                var (start, end) = Range(http, size);
                http.Response.ContentLength = end - start + 1;
                if (start > 0 || end < size - 1)
                {
                    http.Response.StatusCode = 206;
                    http.Response.Headers.ContentRange = $"bytes {start}-{end}/{size}";
                }

                if (http.Request.Method == "GET")
                {
                    await SendBlobAsync(http, cache, blobs, ns, digest, start, end, size);
                }

                return;
            case "DELETE":
                throw new RegistryError(405, "UNSUPPORTED", "blobs go when no manifest references them; delete the manifest");
            default:
                await Unsupported(http);
                return;
        }
    }

    // A whole blob is verified while it streams, as DownloadLayer does; a range is served as stored.
    private static async Task SendBlobAsync(HttpContext http, LayerCache cache, IBlobStore blobs, string ns, Digest digest, long start, long end, long size)
    {
        var metrics = http.RequestServices.GetRequiredService<CacheMetrics>();
        if (start == 0 && end == size - 1)
        {
            await foreach (var chunk in cache.DownloadAsync(ns, digest, 0, http.RequestAborted))
            {
                await http.Response.Body.WriteAsync(chunk, http.RequestAborted);
                metrics.LayerBytes("download", chunk.Length);
            }

            return;
        }

        await using var stream = await blobs.OpenReadAsync(ns, digest, start, http.RequestAborted);
        var buffer = new byte[64 * 1024];
        for (var left = end - start + 1; left > 0;)
        {
            var read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), http.RequestAborted);
            if (read == 0)
            {
                break;
            }

            await http.Response.Body.WriteAsync(buffer.AsMemory(0, read), http.RequestAborted);
            metrics.LayerBytes("download", read);
            left -= read;
        }
    }

    private static (long Start, long End) Range(HttpContext http, long size)
    {
        var header = http.Request.Headers.Range.ToString();
        if (!header.StartsWith("bytes=", StringComparison.Ordinal))
        {
            return (0, size - 1);
        }

        var parts = header["bytes=".Length..].Split('-');
        long start, end;
        if (parts[0].Length == 0 && parts.Length > 1 && long.TryParse(parts[1], out var suffix))
        {
            (start, end) = (Math.Max(0, size - suffix), size - 1); // "bytes=-N": the last N bytes
        }
        else
        {
            start = long.TryParse(parts[0], out var s) ? s : 0;
            end = parts.Length > 1 && long.TryParse(parts[1], out var e) ? Math.Min(e, size - 1) : size - 1;
        }

        return start <= end && start < size ? (start, end) : throw new RegistryError(416, "RANGE_INVALID", $"range {header} is outside 0-{size - 1}");
    }

    private static async Task StartUploadAsync(HttpContext http, string ns)
    {
        var sessions = http.RequestServices.GetRequiredService<UploadSessions>();
        var query = http.Request.Query;
        if (Digest.TryParse(query["mount"], out var mounted) && NamespaceName.Validate(query["from"], "from") is var from && from != ns)
        {
            var blobs = http.RequestServices.GetRequiredService<IBlobStore>();
            if (await blobs.GetSizeAsync(from, mounted, http.RequestAborted) is { } size)
            {
                // Namespaces do not share blobs (tenants are isolated), so a mount is a verified copy.
                await using var source = await blobs.OpenReadAsync(from, mounted, 0, http.RequestAborted);
                await http.RequestServices.GetRequiredService<LayerCache>().UploadAsync(ns, mounted, size, source, http.RequestAborted);
                Created(http, ns, mounted);
                return;
            }
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

    private static async Task UploadAsync(HttpContext http, string ns, string id)
    {
        var sessions = http.RequestServices.GetRequiredService<UploadSessions>();
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

    private static async Task CompleteAsync(HttpContext http, string ns, string id, Digest digest)
    {
        var sessions = http.RequestServices.GetRequiredService<UploadSessions>();
        try
        {
            await using (var content = sessions.Open(id))
            {
                if (await http.RequestServices.GetRequiredService<LayerCache>().UploadAsync(ns, digest, content.Length, content, http.RequestAborted))
                {
                    http.RequestServices.GetRequiredService<CacheMetrics>().LayerBytes("upload", content.Length);
                }
            }
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

    private static async Task ManifestAsync(HttpContext http, string ns, string reference)
    {
        var registry = http.RequestServices.GetRequiredService<OciRegistry>();
        switch (http.Request.Method)
        {
            case "HEAD":
            case "GET":
                var manifest = await registry.GetManifestAsync(ns, reference, http.RequestAborted);
                if (!OciRegistry.IsDigest(reference))
                {
                    http.RequestServices.GetRequiredService<CacheMetrics>().Lookup(ns, manifest is not null, degraded: false);
                }

                if (manifest is null)
                {
                    throw new RegistryError(404, "MANIFEST_UNKNOWN", $"manifest {reference} is not in {ns}");
                }

                http.Response.ContentType = manifest.MediaType;
                http.Response.ContentLength = manifest.Content.Length;
                http.Response.Headers[DigestHeader] = manifest.Digest.Value;
                http.Response.Headers.ETag = $"\"{manifest.Digest}\"";
                if (http.Request.Method == "GET")
                {
                    await http.Response.Body.WriteAsync(manifest.Content, http.RequestAborted);
                }

                return;
            case "PUT":
                if (http.Request.ContentLength > OciRegistry.MaxManifestBytes)
                {
                    throw new RegistryError(413, "SIZE_INVALID", $"a manifest may have at most {OciRegistry.MaxManifestBytes} bytes");
                }

                using (var body = new MemoryStream())
                {
                    // Read at most one byte past the limit, so a body without Content-Length cannot fill memory.
                    var buffer = new byte[64 * 1024];
                    int read;
                    while (body.Length <= OciRegistry.MaxManifestBytes && (read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
                    {
                        body.Write(buffer, 0, read);
                    }

                    var digest = await registry.PutManifestAsync(ns, reference, http.Request.ContentType ?? "", body.ToArray(), http.RequestAborted);
                    http.Response.StatusCode = 201;
                    http.Response.Headers.Location = $"/v2/{ns}/manifests/{digest}";
                    http.Response.Headers[DigestHeader] = digest.Value;
                }

                return;
            case "DELETE":
                var deleted = OciRegistry.IsDigest(reference) && await registry.DeleteManifestAsync(ns, Digest.Parse(reference, "reference"), http.RequestAborted);
                http.Response.StatusCode = deleted ? 202 : throw new RegistryError(404, "MANIFEST_UNKNOWN", $"manifest {reference} is not in {ns}");
                return;
            default:
                await Unsupported(http);
                return;
        }
    }

    // Tags, sorted, n at a time after `last`; a Link header points at the next page.
    private static async Task TagsAsync(HttpContext http, string ns)
    {
        var all = await http.RequestServices.GetRequiredService<OciRegistry>().ListTagsAsync(ns, http.RequestAborted);
        var last = http.Request.Query["last"].ToString();
        var page = all.Where(t => string.CompareOrdinal(t, last) > 0).ToList();
        if (int.TryParse(http.Request.Query["n"], out var n) && n >= 0 && page.Count > n)
        {
            page = page[..n];
            http.Response.Headers.Link = $"</v2/{ns}/tags/list?n={n}&last={Uri.EscapeDataString(page[^1])}>; rel=\"next\"";
        }

        await http.Response.WriteAsJsonAsync(new { name = ns, tags = page });
    }

    private static Task Unsupported(HttpContext http) =>
        throw new RegistryError(405, "UNSUPPORTED", $"{http.Request.Method} is not supported here");

    private static RegistryError? Describe(Exception e) => e switch
    {
        RegistryError error => error,
        InvalidFieldException { Field: "name" or "from" } => new RegistryError(400, "NAME_INVALID", e.Message),
        InvalidFieldException { Field: "digest" or "header.digest" or "header.size" or "size" } => new RegistryError(400, "DIGEST_INVALID", e.Message),
        InvalidFieldException { Field: "manifest" or "reference" } => new RegistryError(400, "MANIFEST_INVALID", e.Message),
        InvalidFieldException => new RegistryError(400, "DIGEST_INVALID", e.Message),
        PreconditionFailedException => new RegistryError(400, "MANIFEST_BLOB_UNKNOWN", e.Message),
        BlobNotFoundException => new RegistryError(404, "BLOB_UNKNOWN", e.Message),
        QuotaExceededException => new RegistryError(413, "DENIED", e.Message),
        BackendUnavailableException => new RegistryError(503, "UNAVAILABLE", e.Message),
        JsonException => new RegistryError(400, "MANIFEST_INVALID", "the manifest is not valid JSON"),
        _ => null,
    };

    /// <summary>An answer in the spec's error format.</summary>
    private sealed class RegistryError(int status, string code, string message) : Exception(message)
    {
        public int Status { get; } = status;

        public string Code { get; } = code;
    }
}
