using CacheService.Core;
using CacheService.Core.Registry;

namespace CacheService.Server.Registry;

/// <summary>Manifests by tag or digest: GET and HEAD (a GET by tag is a counted cache lookup, in the core), PUT, DELETE by digest (the manifest and its tags) or by tag (the tag).</summary>
internal sealed partial class RegistryHandler
{
    private async Task ManifestAsync(HttpContext http, string ns, string reference)
    {
        switch (http.Request.Method)
        {
            case "HEAD":
            case "GET":
                var manifest = await registry.GetManifestAsync(ns, reference, http.RequestAborted)
                    ?? throw new RegistryError(404, "MANIFEST_UNKNOWN", $"manifest {reference} is not in {ns}");
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
                var pushed = await registry.PutManifestAsync(ns, reference, http.Request.ContentType ?? "", await ReadManifestAsync(http), http.RequestAborted);
                http.Response.StatusCode = 201;
                http.Response.Headers.Location = $"/v2/{ns}/manifests/{pushed.Digest}";
                http.Response.Headers[DigestHeader] = pushed.Digest.Value;
                if (pushed.Subject is { } subject)
                {
                    // Tells the client this registry keeps referrers, so it need not push the fallback tag.
                    http.Response.Headers["OCI-Subject"] = subject.Value;
                }

                return;
            case "DELETE":
                var byDigest = OciRegistry.IsDigest(reference);
                if (!(byDigest ? options.Value.AllowManifestDelete : options.Value.AllowTagDelete))
                {
                    throw new RegistryError(405, "UNSUPPORTED", $"deleting {(byDigest ? "manifests" : "tags")} is turned off here (CacheService:Registry)");
                }

                var deleted = byDigest
                    ? Digest.TryParse(reference, out var manifestDigest) && await registry.DeleteManifestAsync(ns, manifestDigest, http.RequestAborted)
                    : await registry.DeleteTagAsync(ns, reference, http.RequestAborted);
                http.Response.StatusCode = deleted ? 202 : throw new RegistryError(404, "MANIFEST_UNKNOWN", $"manifest {reference} is not in {ns}");
                return;
            default:
                await Unsupported(http);
                return;
        }
    }

    // Reads at most one byte past the limit, so a body without Content-Length cannot fill memory.
    private static async Task<byte[]> ReadManifestAsync(HttpContext http)
    {
        if (http.Request.ContentLength > OciRegistry.MaxManifestBytes)
        {
            throw new RegistryError(413, "SIZE_INVALID", $"a manifest may have at most {OciRegistry.MaxManifestBytes} bytes");
        }

        using var body = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int read;
        while (body.Length <= OciRegistry.MaxManifestBytes && (read = await http.Request.Body.ReadAsync(buffer, http.RequestAborted)) > 0)
        {
            body.Write(buffer, 0, read);
        }

        return body.ToArray();
    }
}
