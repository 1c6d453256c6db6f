using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace CacheService.Testing;

/// <summary>Pushes blobs, manifests and whole images over the registry API (<c>/v2/</c>), as a registry client would.</summary>
public static class OciImages
{
    /// <summary>The media type of the manifests pushed here.</summary>
    public const string ManifestType = "application/vnd.oci.image.manifest.v1+json";

    /// <summary>An OCI image manifest naming a config and layers.</summary>
    public static byte[] Manifest(string config, int configSize, params (string Digest, int Size)[] layers) => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
    {
        schemaVersion = 2,
        mediaType = ManifestType,
        config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = config, size = configSize },
        layers = layers.Select(l => new { mediaType = "application/vnd.oci.image.layer.v1.tar", digest = l.Digest, size = l.Size }),
    }));

    /// <summary>Pushes a blob in one monolithic POST; asserts it was created and returns its digest.</summary>
    public static async Task<string> PushBlobAsync(this HttpClient http, string repo, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(http);
        var digest = Layers.DigestOf(data);
        using var response = await http.PostAsync($"/v2/{repo}/blobs/uploads/?digest={digest}", new ByteArrayContent(data));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return digest;
    }

    /// <summary>PUTs a manifest under a tag or digest; the caller checks the answer.</summary>
    public static async Task<HttpResponseMessage> PutManifestAsync(this HttpClient http, string repo, string reference, byte[] manifest)
    {
        ArgumentNullException.ThrowIfNull(http);
        var content = new ByteArrayContent(manifest);
        content.Headers.ContentType = new MediaTypeHeaderValue(ManifestType);
        return await http.PutAsync($"/v2/{repo}/manifests/{reference}", content);
    }

    /// <summary>Pushes a config, one layer of <paramref name="layerBytes"/> and a manifest tagged <paramref name="tag"/>.</summary>
    public static async Task<(byte[] Manifest, string Digest)> PushImageAsync(this HttpClient http, string repo, string tag, int seed, int layerBytes = 1000)
    {
        var config = Encoding.UTF8.GetBytes($"{{\"seed\":{seed}}}");
        var layer = Layers.Random(layerBytes, seed);
        var manifest = Manifest(await http.PushBlobAsync(repo, config), config.Length, (await http.PushBlobAsync(repo, layer), layer.Length));
        using var response = await http.PutManifestAsync(repo, tag, manifest);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return (manifest, Layers.DigestOf(manifest));
    }
}
