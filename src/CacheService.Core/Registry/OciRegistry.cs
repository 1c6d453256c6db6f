using System.Text.Json;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Core.Keys;
using CacheService.Core.Options;

namespace CacheService.Core.Registry;

/// <summary>A manifest as a registry serves it.</summary>
/// <param name="Digest">Digest of its bytes.</param>
/// <param name="MediaType">Its media type, as it was pushed.</param>
/// <param name="Content">Its bytes.</param>
public sealed record OciManifest(Digest Digest, string MediaType, byte[] Content);

/// <summary>
/// The registry view of the cache (OCI Distribution): a repository is a namespace, blobs are the
/// namespace's blobs, and manifests are index entries. A manifest is stored as a blob; an entry
/// under its digest (and one under each tag pushed) lists the manifest, its config and its layers
/// as the blobs it keeps alive, so they live while any tag or digest entry does and the LRU
/// evicts them together. Tags are mutable, as in any registry: pushing a tag again repoints it.
/// </summary>
public sealed class OciRegistry(LayerCache cache, ILayerIndex index, IBlobStore blobs, EvictionOptions eviction)
{
    /// <summary>Domain tag of a tag's entry key.</summary>
    public const string TagKeyDomain = "cacheservice/oci/tag/v1";

    /// <summary>Domain tag of a manifest digest's entry key.</summary>
    public const string ManifestKeyDomain = "cacheservice/oci/manifest/v1";

    /// <summary>Largest manifest accepted (as CNCF Distribution: 4 MiB).</summary>
    public const int MaxManifestBytes = 4 << 20;

    /// <summary>The index key of a tag.</summary>
    public static Digest TagKey(string tag) => new Preimage().Field(TagKeyDomain).Field(tag).Hash();

    /// <summary>The index key of a manifest by digest.</summary>
    public static Digest ManifestKey(Digest manifest) => new Preimage().Field(ManifestKeyDomain).Field(manifest.Value).Hash();

    /// <summary>True for a reference that is a digest rather than a tag.</summary>
    public static bool IsDigest(string reference) => reference.StartsWith("sha256:", StringComparison.Ordinal);

    /// <summary>
    /// The manifest under a tag or digest, or null. A lookup by tag counts as a cache lookup (hit
    /// or miss) in the namespace's stats, as a gRPC lookup does: for builders, a tag is a step key.
    /// </summary>
    public async Task<OciManifest?> GetManifestAsync(string ns, string reference, CancellationToken cancellationToken)
    {
        IndexEntry? entry;
        if (IsDigest(reference))
        {
            entry = await index.LookupAsync(ns, ManifestKey(Digest.Parse(reference, "reference")), cancellationToken);
        }
        else
        {
            var found = await cache.LookupAsync([ns], TagKey(CheckTag(reference)), cancellationToken);
            entry = found.Entry;
        }

        if (entry is null)
        {
            return null;
        }

        using var content = new MemoryStream();
        await foreach (var chunk in cache.DownloadAsync(ns, entry.Layer.Digest, 0, cancellationToken))
        {
            content.Write(chunk.Span);
        }

        return new OciManifest(entry.Layer.Digest, entry.Layer.MediaType, content.ToArray());
    }

    /// <summary>
    /// Stores a manifest under its digest and, when <paramref name="reference"/> is a tag, under
    /// the tag. Every blob it names must already be in the namespace, and every manifest an index
    /// names must have been pushed.
    /// </summary>
    /// <exception cref="InvalidFieldException">Field <c>manifest</c>: unreadable JSON; <c>reference</c>: a digest that does not match.</exception>
    /// <exception cref="PreconditionFailedException">A blob or manifest the manifest names is missing.</exception>
    public async Task<Digest> PutManifestAsync(string ns, string reference, string mediaType, byte[] content, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(content);
        if (content.Length > MaxManifestBytes)
        {
            throw new InvalidFieldException("manifest", $"is larger than {MaxManifestBytes} bytes");
        }

        var digest = Digest.Of(content);
        if (IsDigest(reference) && Digest.Parse(reference, "reference") != digest)
        {
            throw new InvalidFieldException("reference", $"is {reference} but the manifest's bytes hash to {digest}");
        }

        var (type, referenced, children) = Parse(content, mediaType);
        var kept = new List<BlobRef> { new(digest, content.Length) };
        foreach (var blob in referenced)
        {
            var size = await blobs.GetSizeAsync(ns, blob, cancellationToken)
                ?? throw new PreconditionFailedException($"blob {blob} is not in repository {ns}");
            kept.Add(new BlobRef(blob, size));
        }

        foreach (var child in children)
        {
            var entry = await index.LookupAsync(ns, ManifestKey(child), cancellationToken)
                ?? throw new PreconditionFailedException($"manifest {child} is not in repository {ns}");
            kept.AddRange(entry.Blobs);
        }

        await cache.UploadAsync(ns, digest, content.Length, new MemoryStream(content), cancellationToken);
        var layer = new LayerDescriptor(digest, digest, content.Length, type);
        var blobsKept = kept.DistinctBy(b => b.Digest).ToList();
        var budget = eviction.BudgetFor(ns);
        await index.CommitAsync(ns, new NewEntry(ManifestKey(digest), layer, blobsKept, ""), budget, cancellationToken);
        if (!IsDigest(reference))
        {
            var tag = CheckTag(reference);
            var preimage = JsonSerializer.Serialize(new { ociTag = tag });
            var outcome = await index.CommitAsync(ns, new NewEntry(TagKey(tag), layer, blobsKept, preimage), budget, cancellationToken);
            if (!outcome.Created && outcome.Entry.Layer.Digest != digest)
            {
                // The tag moves to the new manifest; the old one stays under its digest.
                await index.DeleteAsync(ns, [TagKey(tag)], cancellationToken);
                await index.CommitAsync(ns, new NewEntry(TagKey(tag), layer, blobsKept, preimage), budget, cancellationToken);
            }
        }

        return digest;
    }

    /// <summary>The namespace's tags, sorted.</summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(string ns, CancellationToken cancellationToken)
    {
        var tags = new List<string>();
        foreach (var entry in await index.ListEntriesAsync(ns, cancellationToken))
        {
            if (entry.Preimage.StartsWith("{\"ociTag\":", StringComparison.Ordinal)
                && JsonDocument.Parse(entry.Preimage).RootElement.GetProperty("ociTag").GetString() is { } tag)
            {
                tags.Add(tag);
            }
        }

        tags.Sort(StringComparer.Ordinal);
        return tags;
    }

    /// <summary>Deletes a manifest's digest entry and its tags' entries; the blobs go when nothing references them.</summary>
    public async Task<bool> DeleteManifestAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var keys = (await index.ListEntriesAsync(ns, cancellationToken))
            .Where(e => e.Layer.Digest == digest && (e.Key == ManifestKey(digest) || e.Preimage.StartsWith("{\"ociTag\":", StringComparison.Ordinal)))
            .Select(e => e.Key).ToList();
        return keys.Count > 0 && await index.DeleteAsync(ns, keys, cancellationToken) > 0;
    }

    private static string CheckTag(string tag) =>
        tag.Length is > 0 and <= 128 && (char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_') && tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')
            ? tag
            : throw new InvalidFieldException("reference", $"'{tag}' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})");

    // The media type (the manifest's own field wins over the request's), the blobs it names
    // (config, layers, subject excluded) and, for an index, the manifests it names.
    private static (string MediaType, List<Digest> Blobs, List<Digest> Manifests) Parse(byte[] content, string mediaType)
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

        var type = root.TryGetProperty("mediaType", out var declared) && declared.GetString() is { Length: > 0 } d ? d : mediaType;
        if (string.IsNullOrEmpty(type))
        {
            throw new InvalidFieldException("manifest", "has no media type (neither a mediaType field nor a Content-Type)");
        }

        var blobs = new List<Digest>();
        if (root.TryGetProperty("config", out var config))
        {
            blobs.Add(DescriptorDigest(config));
        }

        if (root.TryGetProperty("layers", out var layers))
        {
            blobs.AddRange(layers.EnumerateArray().Select(DescriptorDigest));
        }

        var manifests = root.TryGetProperty("manifests", out var children) ? children.EnumerateArray().Select(DescriptorDigest).ToList() : [];
        return (type, blobs, manifests);
    }

    private static Digest DescriptorDigest(JsonElement descriptor) =>
        descriptor.TryGetProperty("digest", out var digest) && Digest.TryParse(digest.GetString(), out var parsed)
            ? parsed
            : throw new InvalidFieldException("manifest", "names a descriptor without a valid sha256 digest");
}
