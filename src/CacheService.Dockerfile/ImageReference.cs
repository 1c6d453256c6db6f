using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>
/// Turns an image reference (a FROM, <c>COPY --from</c> or <c>RUN --mount from=</c> image) into
/// the state keys build on: <c>scratch</c> is the empty state; a reference pinned with
/// <c>@sha256:</c> is its digest; a reference given by <c>--base</c> is the digest given; any
/// other tag is keyed by its normalized name, with a warning, because tags move.
/// </summary>
public static class ImageReference
{
    /// <summary>Domain tag of the state of an unpinned image reference.</summary>
    public const string UnpinnedDomain = "cacheservice/state/v1/unpinned";

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

    /// <summary>The state an image reference stands for; <paramref name="warnings"/> gets a line when it is unpinned.</summary>
    public static Digest State(string reference, IReadOnlyDictionary<string, Digest> baseImages, ICollection<string> warnings)
    {
        ArgumentNullException.ThrowIfNull(baseImages);
        ArgumentNullException.ThrowIfNull(warnings);
        if (reference.Equals("scratch", StringComparison.OrdinalIgnoreCase))
        {
            return CacheKeyV1.ScratchState;
        }

        var at = reference.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            return Digest.Parse(reference[(at + 1)..], "FROM");
        }

        var normalized = Normalize(reference);
        foreach (var (given, digest) in baseImages)
        {
            if (Normalize(given) == normalized)
            {
                return digest;
            }
        }

        warnings.Add($"{reference} is not pinned: keyed by its name, but tags move; pin it with @sha256:... or --base {reference}=sha256:...");
        return new Preimage().Field(UnpinnedDomain).Field(normalized).Hash();
    }
}
