using CacheService.Core.Commits;
using CacheService.Core.Index;
using CacheService.Core.Keys;
using CacheService.Core.Lookups;
using CacheService.Core.Transfers;

namespace CacheService.Core.Registry;

/// <summary>A manifest as a registry serves it.</summary>
/// <param name="Digest">Digest of its bytes.</param>
/// <param name="MediaType">Its media type, as it was pushed.</param>
/// <param name="Content">Its bytes.</param>
public sealed record OciManifest(Digest Digest, string MediaType, byte[] Content);

/// <summary>A manifest just pushed: its digest, and the subject it refers to (OCI 1.1), if any.</summary>
public sealed record PushedManifest(Digest Digest, Digest? Subject);

/// <summary>A manifest that refers to another through its <c>subject</c>, as the referrers API lists it.</summary>
public sealed record OciReferrer(Digest Digest, string MediaType, long Size, string? ArtifactType, IReadOnlyDictionary<string, string>? Annotations);

/// <summary>
/// The registry view of the cache (OCI Distribution): a repository is a namespace, blobs are the
/// namespace's blobs, and manifests are index entries. A manifest is stored as a blob; an entry
/// under its digest (and one under each tag pushed) lists the manifest, its config and its layers
/// as the blobs it keeps alive, so they live while any tag or digest entry does and the LRU
/// evicts them together. Tags are the index's own (<see cref="ILayerIndex.PutTagAsync"/>): a push
/// repoints one atomically, and listing them reads no entries.
/// </summary>
/// <remarks>
/// <para>Referrers (OCI 1.1): a manifest pushed with a <c>subject</c> also gets a link, a tag
/// named <c>~referrer/&lt;subject&gt;/&lt;manifest&gt;</c> whose entry keeps the same blobs. No
/// client can push such a tag (<c>~</c> is not a tag character), it sorts after every real tag, so
/// tag listings stop before the links, and the links of one subject are one range of the tag
/// list: listing them is a range read, and deleting the manifest deletes its links with its
/// other tags.</para>
/// <para>Everything goes through the core's services, so a registry request counts, repairs and
/// evicts exactly as a gRPC call does.</para>
/// </remarks>
public sealed class OciRegistry(CacheBackends backends, CacheLookups lookups, LayerCommits commits, LayerTransfers transfers)
{
    /// <summary>Domain tag of a tag's entry key.</summary>
    public const string TagKeyDomain = "cacheservice/oci/tag/v1";

    /// <summary>Domain tag of a manifest digest's entry key.</summary>
    public const string ManifestKeyDomain = "cacheservice/oci/manifest/v1";

    /// <summary>Largest manifest accepted (as CNCF Distribution: 4 MiB).</summary>
    public const int MaxManifestBytes = 4 << 20;

    /// <summary>
    /// Most distinct blobs one manifest entry keeps alive (its own, its config and layers, and
    /// those of the manifests an index names): far above any real image (a 20-platform index of
    /// 200-layer images keeps about 4,000), and well inside what an index entry can hold.
    /// </summary>
    public const int MaxBlobsPerManifest = 10_000;

    /// <summary>The index key of a tag.</summary>
    public static Digest TagKey(string tag) => new Preimage().Field(TagKeyDomain).Field(tag).Hash();

    /// <summary>The index key of a manifest by digest.</summary>
    public static Digest ManifestKey(Digest manifest) => new Preimage().Field(ManifestKeyDomain).Field(manifest.Value).Hash();

    /// <summary>The prefix of the internal tags that link subjects to their referrers.</summary>
    public const string ReferrerTagPrefix = "~referrer/";

    // The prefix of one subject's links; a link is this and the referrer's digest.
    private static string ReferrersOf(Digest subject) => $"{ReferrerTagPrefix}{subject}/";

    /// <summary>True for a reference that is a digest rather than a tag.</summary>
    public static bool IsDigest(string reference) => reference?.StartsWith("sha256:", StringComparison.Ordinal) == true;

    /// <summary>
    /// The manifest under a tag or digest, or null (also for a reference that is neither: the spec
    /// answers 404 to a manifest that is not there, whatever its reference looks like). A lookup by
    /// tag is a cache lookup (hit, miss or degraded) in the namespace's stats, as a gRPC lookup is:
    /// for builders, a tag is a step key.
    /// </summary>
    public async Task<OciManifest?> GetManifestAsync(string ns, string reference, CancellationToken cancellationToken)
    {
        if (IsDigest(reference) ? !Digest.TryParse(reference, out _) : !IsTag(reference))
        {
            return null;
        }

        var entry = IsDigest(reference)
            ? await backends.Index.LookupAsync(ns, ManifestKey(Digest.Parse(reference, "reference")), cancellationToken)
            : (await lookups.LookupAsync([ns], TagKey(reference), cancellationToken)).Entry;
        // Only a manifest is served as one: an entry committed under a tag's key over gRPC may
        // name a layer of any size, and reading it whole into memory is not a manifest GET.
        if (entry is null || entry.Layer.Size > MaxManifestBytes)
        {
            return null;
        }

        return new OciManifest(entry.Layer.Digest, entry.Layer.MediaType, await ReadAsync(ns, entry.Layer.Digest, cancellationToken));
    }

    private async Task<byte[]> ReadAsync(string ns, Digest manifest, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream();
        await foreach (var chunk in transfers.DownloadAsync(ns, manifest, 0, cancellationToken))
        {
            content.Write(chunk.Span);
        }

        return content.ToArray();
    }

    /// <summary>
    /// Stores a manifest under its digest and, when <paramref name="reference"/> is a tag, points
    /// the tag at it. Every blob it names must already be in the namespace, and every manifest an
    /// index names must have been pushed. A manifest with a subject is linked to it for the
    /// referrers API; the subject need not be there (yet).
    /// </summary>
    /// <exception cref="InvalidFieldException">Field <c>manifest</c>: unreadable JSON; <c>reference</c>: a digest that does not match.</exception>
    /// <exception cref="PreconditionFailedException">A blob or manifest the manifest names is missing.</exception>
    public async Task<PushedManifest> PutManifestAsync(string ns, string reference, string mediaType, byte[] content, CancellationToken cancellationToken)
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

        var tag = IsDigest(reference) ? null : CheckTag(reference);
        var manifest = ParsedManifest.Parse(content, mediaType);
        var named = manifest.Blobs.Distinct().ToList(); // a digest named twice is one blob, asked for once
        if (named.Count > MaxBlobsPerManifest)
        {
            throw new InvalidFieldException("manifest", $"names {named.Count} blobs; at most {MaxBlobsPerManifest} are kept per manifest");
        }

        var kept = new List<BlobRef> { new(digest, content.Length) };
        foreach (var blob in named)
        {
            var size = await transfers.SizeAsync(ns, blob, cancellationToken)
                ?? throw new PreconditionFailedException($"blob {blob} is not in repository {ns}");
            kept.Add(new BlobRef(blob, size));
        }

        foreach (var child in manifest.Manifests)
        {
            var entry = await backends.Index.LookupAsync(ns, ManifestKey(child), cancellationToken)
                ?? throw new PreconditionFailedException($"manifest {child} is not in repository {ns}");
            kept.AddRange(entry.Blobs);
        }

        await transfers.UploadAsync(ns, digest, content.Length, new MemoryStream(content), cancellationToken);
        var layer = new LayerDescriptor(digest, digest, content.Length, manifest.MediaType);
        var blobs = kept.DistinctBy(b => b.Digest).ToList();
        if (blobs.Count > MaxBlobsPerManifest)
        {
            throw new InvalidFieldException("manifest", $"keeps {blobs.Count} blobs with the manifests it names; at most {MaxBlobsPerManifest} are kept per manifest");
        }

        await commits.CommitAsync(ns, new NewEntry(ManifestKey(digest), layer, blobs, ""), cancellationToken);
        if (manifest.Subject is { } subject)
        {
            var link = ReferrersOf(subject) + digest;
            await commits.PutTagAsync(ns, link, new NewEntry(TagKey(link), layer, blobs, ""), cancellationToken);
        }

        if (tag is not null)
        {
            await commits.PutTagAsync(ns, tag, new NewEntry(TagKey(tag), layer, blobs, ""), cancellationToken);
        }

        return new PushedManifest(digest, manifest.Subject);
    }

    /// <summary>
    /// The manifests whose subject is <paramref name="subject"/>, in digest order, up to
    /// <paramref name="limit"/> links after <paramref name="after"/> (a referrer's digest), keeping
    /// those of <paramref name="artifactType"/> when given. A link whose manifest is gone (evicted or
    /// deleted by digest) is left out. The second item is where the next page starts, or null.
    /// </summary>
    public async Task<(IReadOnlyList<OciReferrer> Referrers, string? Next)> ListReferrersAsync(
        string ns, Digest subject, string? artifactType, string? after, int limit, CancellationToken cancellationToken)
    {
        var prefix = ReferrersOf(subject);
        var links = (await backends.Index.ListTagsAsync(ns, prefix + (after ?? ""), limit + 1, cancellationToken))
            .TakeWhile(t => t.Tag.StartsWith(prefix, StringComparison.Ordinal))
            .ToList();
        var next = links.Count > limit ? links[limit - 1].Tag[prefix.Length..] : null;
        var referrers = new List<OciReferrer>();
        foreach (var link in links.Take(limit))
        {
            var manifest = link.Layer.Digest;
            if (await backends.Index.LookupAsync(ns, ManifestKey(manifest), cancellationToken) is null)
            {
                continue;
            }

            var parsed = ParsedManifest.Parse(await transfers.ReadInternalAsync(ns, manifest, cancellationToken), link.Layer.MediaType);
            if (artifactType is null || parsed.ArtifactType == artifactType)
            {
                referrers.Add(new OciReferrer(manifest, parsed.MediaType, link.Layer.Size, parsed.ArtifactType, parsed.Annotations));
            }
        }

        return (referrers, next);
    }

    /// <summary>Every repository (namespace) with content or usage, in ordinal order.</summary>
    public Task<IReadOnlyList<string>> ListRepositoriesAsync(CancellationToken cancellationToken) =>
        backends.Index.ListNamespacesAsync(cancellationToken);

    /// <summary>Up to <paramref name="limit"/> tags after <paramref name="after"/>, in ordinal order (the referrer links, which sort last, are not tags).</summary>
    public async Task<IReadOnlyList<string>> ListTagsAsync(string ns, string? after, int limit, CancellationToken cancellationToken) =>
        [.. (await backends.Index.ListTagsAsync(ns, after, limit, cancellationToken)).Select(t => t.Tag).TakeWhile(t => !t.StartsWith(ReferrerTagPrefix, StringComparison.Ordinal))];

    /// <summary>Deletes a manifest's digest entry and the tags that point at it; the blobs go when nothing references them.</summary>
    public async Task<bool> DeleteManifestAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var keys = new List<Digest> { ManifestKey(digest) };
        const int Page = 1000;
        for (string? after = null; ;)
        {
            var tags = await backends.Index.ListTagsAsync(ns, after, Page, cancellationToken);
            keys.AddRange(tags.Where(t => t.Layer.Digest == digest).Select(t => t.Key));
            if (tags.Count < Page)
            {
                break;
            }

            after = tags[^1].Tag;
        }

        return await backends.Index.DeleteAsync(ns, keys, cancellationToken) > 0;
    }

    /// <summary>Removes a tag (the manifest stays, by digest and under its other tags); false when there was no such tag.</summary>
    public async Task<bool> DeleteTagAsync(string ns, string tag, CancellationToken cancellationToken) =>
        IsTag(tag) && await backends.Index.DeleteAsync(ns, [TagKey(tag)], cancellationToken) > 0;

    /// <summary>
    /// Removes a blob from the repository: first every entry that references it (a manifest
    /// without one of its blobs is broken, and a cache entry without its layer a miss anyway), then
    /// the bytes. False when the repository had neither.
    /// </summary>
    public async Task<bool> DeleteBlobAsync(string ns, Digest blob, CancellationToken cancellationToken)
    {
        var entries = await backends.Index.RemoveEntriesReferencingAsync(ns, blob, cancellationToken);
        return await backends.Blobs.DeleteAsync(ns, blob, cancellationToken) | entries > 0;
    }

    private static bool IsTag(string tag) =>
        tag.Length is > 0 and <= 128 && (char.IsAsciiLetterOrDigit(tag[0]) || tag[0] == '_') && tag.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-');

    private static string CheckTag(string tag) =>
        IsTag(tag)
            ? tag
            : throw new InvalidFieldException("reference", $"'{tag}' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})");
}
