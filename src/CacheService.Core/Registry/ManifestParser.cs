using System.Text.Json;

namespace CacheService.Core.Registry;

/// <summary>
/// What a manifest names: its media type, the blobs it needs, (for an index) the manifests it
/// lists, and what the referrers API shows of it: the subject it refers to, its artifact type and
/// its annotations.
/// </summary>
internal sealed record ParsedManifest(
    string MediaType,
    IReadOnlyList<Digest> Blobs,
    IReadOnlyList<Digest> Manifests,
    Digest? Subject,
    string? ArtifactType,
    IReadOnlyDictionary<string, string>? Annotations)
{
    // The media type (the manifest's own field wins over the request's), the blobs it names
    // (config, layers; a subject is not required to be present) and, for an index, its manifests.
    // The artifact type is the manifest's own field, or else its config's media type (OCI 1.1).
    public static ParsedManifest Parse(byte[] content, string mediaType)
    {
        JsonElement root;
        try
        {
            root = JsonDocument.Parse(content).RootElement;
        }
        catch (JsonException e)
        {
            throw new InvalidFieldException("manifest", "is not JSON: " + e.Message);
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidFieldException("manifest", "is not a JSON object");
        }

        var type = root.TryGetProperty("mediaType", out var declared) && declared.ValueKind == JsonValueKind.String && declared.GetString() is { Length: > 0 } d ? d : mediaType;
        if (string.IsNullOrEmpty(type))
        {
            throw new InvalidFieldException("manifest", "has no media type (neither a mediaType field nor a Content-Type)");
        }

        var blobs = new List<Digest>();
        string? configType = null;
        if (root.TryGetProperty("config", out var config))
        {
            blobs.Add(DescriptorDigest(config));
            configType = StringField(config, "mediaType");
        }

        if (root.TryGetProperty("layers", out var layers))
        {
            blobs.AddRange(Descriptors(layers));
        }

        var manifests = root.TryGetProperty("manifests", out var children) ? Descriptors(children) : [];
        Digest? subject = root.TryGetProperty("subject", out var referred) ? DescriptorDigest(referred) : null;
        return new ParsedManifest(type, blobs, manifests, subject, StringField(root, "artifactType") ?? configType, ReadAnnotations(root));
    }

    private static string? StringField(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : null;

    private static Dictionary<string, string>? ReadAnnotations(JsonElement root) =>
        root.TryGetProperty("annotations", out var annotations) && annotations.ValueKind == JsonValueKind.Object
            ? annotations.EnumerateObject().Where(a => a.Value.ValueKind == JsonValueKind.String).ToDictionary(a => a.Name, a => a.Value.GetString()!, StringComparer.Ordinal)
            : null;

    private static List<Digest> Descriptors(JsonElement array) =>
        array.ValueKind == JsonValueKind.Array
            ? array.EnumerateArray().Select(DescriptorDigest).ToList()
            : throw new InvalidFieldException("manifest", "has a descriptor list that is not an array");

    private static Digest DescriptorDigest(JsonElement descriptor) =>
        descriptor.ValueKind == JsonValueKind.Object && descriptor.TryGetProperty("digest", out var digest)
            && digest.ValueKind == JsonValueKind.String && Digest.TryParse(digest.GetString(), out var parsed)
            ? parsed
            : throw new InvalidFieldException("manifest", "names a descriptor without a valid sha256 digest");
}
