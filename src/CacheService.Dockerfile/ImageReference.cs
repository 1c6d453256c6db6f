using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>
/// Turns an image reference (a FROM, <c>COPY --from</c> or <c>RUN --mount from=</c> image) into
/// the state keys build on: <c>scratch</c> is the empty state, the same on every platform; a
/// reference pinned with <c>@sha256:</c> is its digest on the platform; a reference given by
/// <c>--base</c> is the digest given, on the platform; any other tag is keyed by its normalized
/// name and the platform, with a warning, because tags move.
/// </summary>
public static class ImageReference
{
    /// <summary>Domain tag of the state of an unpinned image reference.</summary>
    public const string UnpinnedDomain = "cacheservice/state/v2/unpinned";

    /// <summary>
    /// Normalizes the way Docker reads references: <c>alpine</c>, <c>alpine:latest</c> and
    /// <c>docker.io/library/alpine:latest</c> are one image.
    /// </summary>
    public static string Normalize(string reference)
    {
        ArgumentException.ThrowIfNullOrEmpty(reference);
        var name = reference;
        foreach (var prefix in (string[])["docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"])
        {
            if (name.StartsWith(prefix, StringComparison.Ordinal))
            {
                name = name[prefix.Length..];
                break;
            }
        }

        var lastSegment = name[(name.LastIndexOf('/') + 1)..];
        return name.Contains('@', StringComparison.Ordinal) || lastSegment.Contains(':', StringComparison.Ordinal) ? name : name + ":latest";
    }

    /// <summary>The state an image reference stands for on <paramref name="platform"/>; <paramref name="warnings"/> gets a line when it is unpinned.</summary>
    public static Digest State(string reference, string platform, IReadOnlyDictionary<string, Digest> baseImages, ICollection<string> warnings)
    {
        ArgumentNullException.ThrowIfNull(baseImages);
        ArgumentNullException.ThrowIfNull(warnings);
        if (reference.Equals("scratch", StringComparison.OrdinalIgnoreCase))
        {
            return CacheKeyV2.ScratchState;
        }

        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            return CacheKeyV2.ImageState(Digest.Parse(reference[(at + 1)..], "FROM"), platform);
        }

        var normalized = Normalize(reference);
        foreach (var (given, digest) in baseImages)
        {
            if (Normalize(given) == normalized)
            {
                return CacheKeyV2.ImageState(digest, platform);
            }
        }

        warnings.Add($"{reference} is not pinned: keyed by its name, but tags move; pin it with @sha256:... or --base {reference}=sha256:...");
        return new Preimage().Field(UnpinnedDomain).Field(normalized).Field(CacheKeyV2.NormalizePlatform(platform)).Hash();
    }
}
