using System.Text.Json;
using System.Text.Json.Serialization;
using CacheService.Core;

namespace CacheService.Server.Registry;

/// <summary>
/// The referrers API (distribution-spec v1.1): the manifests that name a digest as their subject,
/// as an image index, filtered by <c>artifactType</c> when asked. Never a 404: a subject nobody
/// refers to has an empty list.
/// </summary>
internal sealed partial class RegistryHandler
{
    // Referrers per page; a longer list gets a Link header to the rest.
    private const int ReferrerPage = 1000;

    private const string ImageIndexType = "application/vnd.oci.image.index.v1+json";

    private async Task ReferrersAsync(HttpContext http, string ns, Digest subject)
    {
        if (!HttpMethods.IsGet(http.Request.Method))
        {
            await Unsupported(http);
            return;
        }

        var artifactType = http.Request.Query["artifactType"].ToString();
        var last = http.Request.Query["last"].ToString();
        var (referrers, next) = await registry.ListReferrersAsync(
            ns, subject, artifactType.Length == 0 ? null : artifactType, last.Length == 0 ? null : last, ReferrerPage, http.RequestAborted);
        if (artifactType.Length > 0)
        {
            http.Response.Headers["OCI-Filters-Applied"] = "artifactType";
        }

        if (next is not null)
        {
            var filter = artifactType.Length == 0 ? "" : $"artifactType={Uri.EscapeDataString(artifactType)}&";
            http.Response.Headers.Link = $"</v2/{ns}/referrers/{subject}?{filter}last={Uri.EscapeDataString(next)}>; rel=\"next\"";
        }

        http.Response.ContentType = ImageIndexType;
        await http.Response.WriteAsJsonAsync(new
        {
            schemaVersion = 2,
            mediaType = ImageIndexType,
            manifests = referrers.Select(r => new { mediaType = r.MediaType, digest = r.Digest.Value, size = r.Size, artifactType = r.ArtifactType, annotations = r.Annotations }),
        }, ReferrerJson, ImageIndexType, http.RequestAborted);
    }

    // Absent artifact types and annotations are left out, not written as null.
    private static readonly JsonSerializerOptions ReferrerJson = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };
}
