using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using CacheService.Core;

namespace CacheService.Build;

/// <summary>
/// An OCI image layout directory (image-spec <c>image-layout.md</c>): content-addressed blobs and
/// an <c>index.json</c> naming images by <c>org.opencontainers.image.ref.name</c>. buildah reads
/// and writes it as <c>oci:DIR:NAME</c>, so it is where images pass between buildah and the cache.
/// </summary>
public sealed class OciLayout
{
    /// <summary>The media type of an OCI image manifest.</summary>
    public const string ManifestType = "application/vnd.oci.image.manifest.v1+json";

    private const string ConfigType = "application/vnd.oci.image.config.v1+json";
    private const string RefName = "org.opencontainers.image.ref.name";

    /// <summary>Opens <paramref name="root"/>, creating an empty layout there when it has none.</summary>
    public OciLayout(string root)
    {
        Root = Path.GetFullPath(root);
        Directory.CreateDirectory(Path.Combine(Root, "blobs", "sha256"));
        if (!File.Exists(Path.Combine(Root, "oci-layout")))
        {
            File.WriteAllText(Path.Combine(Root, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
            File.WriteAllText(IndexPath, "{\"schemaVersion\":2,\"manifests\":[]}");
        }
    }

    /// <summary>The layout's directory.</summary>
    public string Root { get; }

    private string IndexPath => Path.Combine(Root, "index.json");

    /// <summary>Where the blob <paramref name="digest"/> lives (or would).</summary>
    public string BlobPath(Digest digest) => Path.Combine(Root, "blobs", "sha256", digest.Hex);

    /// <summary>The buildah and skopeo name of the image <paramref name="name"/> in this layout.</summary>
    public string Reference(string name) => $"oci:{Root}:{name}";

    /// <summary>Writes <paramref name="image"/>'s config and manifest (its layers must be here) and names it <paramref name="name"/>; returns the manifest digest.</summary>
    public Digest WriteImage(string name, OciImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        foreach (var layer in image.Layers.Where(l => !File.Exists(BlobPath(l.Digest))))
        {
            throw new InvalidOperationException($"layer {layer.Digest} is not in the layout");
        }

        var config = PutBytes(JsonSerializer.SerializeToUtf8Bytes(image.Config));
        var manifest = new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = ManifestType,
            ["config"] = Descriptor(ConfigType, config.Digest, config.Size),
            ["layers"] = new JsonArray([.. image.Layers.Select(l => (JsonNode)Descriptor(l.MediaType, l.Digest, l.Size))]),
        };
        var written = PutBytes(JsonSerializer.SerializeToUtf8Bytes(manifest));
        var index = JsonNode.Parse(File.ReadAllText(IndexPath))!.AsObject();
        var manifests = index["manifests"]!.AsArray();
        foreach (var old in manifests.Where(m => (string?)m!["annotations"]?[RefName] == name).ToList())
        {
            manifests.Remove(old);
        }

        var entry = Descriptor(ManifestType, written.Digest, written.Size);
        entry["annotations"] = new JsonObject { [RefName] = name };
        manifests.Add(entry);
        WriteAtomically(IndexPath, JsonSerializer.SerializeToUtf8Bytes(index));
        return written.Digest;
    }

    /// <summary>Reads the image <paramref name="name"/>: its layers and config.</summary>
    /// <exception cref="InvalidDataException">The layout has no such image or it is not an OCI image manifest.</exception>
    public OciImage ReadImage(string name)
    {
        var index = JsonNode.Parse(File.ReadAllText(IndexPath))!.AsObject();
        var entry = index["manifests"]!.AsArray().LastOrDefault(m => (string?)m!["annotations"]?[RefName] == name)
            ?? throw new InvalidDataException($"the layout {Root} has no image named {name}");
        var manifest = JsonNode.Parse(File.ReadAllBytes(BlobPath(Digest.Parse((string?)entry["digest"], "digest"))))!.AsObject();
        var config = JsonNode.Parse(File.ReadAllBytes(BlobPath(Digest.Parse((string?)manifest["config"]?["digest"], "config"))))!.AsObject();
        var diffIds = config["rootfs"]?["diff_ids"]?.AsArray().Select(d => Digest.Parse((string?)d, "diff_id")).ToList() ?? [];
        var layers = manifest["layers"]?.AsArray() ?? [];
        if (layers.Count != diffIds.Count)
        {
            throw new InvalidDataException($"image {name} has {layers.Count} layers and {diffIds.Count} diff ids");
        }

        return new OciImage(
            [.. layers.Select((l, i) => new ImageLayer(Digest.Parse((string?)l!["digest"], "digest"), diffIds[i], (long)l["size"]!, (string)l["mediaType"]!))],
            config);
    }

    /// <summary>Stores <paramref name="data"/> as a blob.</summary>
    public (Digest Digest, long Size) PutBytes(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        var digest = Digest.Parse("sha256:" + Convert.ToHexStringLower(SHA256.HashData(data)), "digest");
        if (!File.Exists(BlobPath(digest)))
        {
            WriteAtomically(BlobPath(digest), data);
        }

        return (digest, data.Length);
    }

    /// <summary>Copies the image <paramref name="name"/> and the blobs it needs into a new layout at <paramref name="root"/>, named <paramref name="as"/>.</summary>
    public OciLayout ExportImage(string name, string root, string @as)
    {
        var image = ReadImage(name);
        var target = new OciLayout(root);
        foreach (var layer in image.Layers)
        {
            CopyBlob(layer.Digest, target);
        }

        target.WriteImage(@as, image);
        return target;
    }

    private void CopyBlob(Digest digest, OciLayout target)
    {
        var destination = target.BlobPath(digest);
        if (!File.Exists(destination))
        {
            File.Copy(BlobPath(digest), destination + ".partial", overwrite: true);
            File.Move(destination + ".partial", destination, overwrite: true);
        }
    }

    private static JsonObject Descriptor(string mediaType, Digest digest, long size) =>
        new() { ["mediaType"] = mediaType, ["digest"] = digest.Value, ["size"] = size };

    private static void WriteAtomically(string path, byte[] data)
    {
        File.WriteAllBytes(path + ".partial", data);
        File.Move(path + ".partial", path, overwrite: true);
    }
}
