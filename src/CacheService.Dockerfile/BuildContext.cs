using System.Globalization;
using CacheService.Core;

namespace CacheService.Dockerfile;

/// <summary>
/// The files a build can read: a directory and the <c>.dockerignore</c> rules that hide part of
/// it. COPY, ADD and <c>RUN --mount=type=bind</c> select from it by path or wildcard.
/// </summary>
public sealed class BuildContext
{
    /// <summary>Most entries one selection (a wildcard's matches, or what one COPY reads) may hold: memory stays bounded whatever the context.</summary>
    public const int DefaultMaxEntries = 1_000_000;

    /// <summary>Opens <paramref name="root"/>. A <c>&lt;Dockerfile&gt;.dockerignore</c> next to the Dockerfile wins over the context's <c>.dockerignore</c>, as in BuildKit.</summary>
    /// <param name="root">The context directory.</param>
    /// <param name="dockerfilePath">The Dockerfile, for its own <c>.dockerignore</c>.</param>
    /// <param name="maxEntries">Most entries one selection may hold (<see cref="DefaultMaxEntries"/>); past it the plan is refused.</param>
    public BuildContext(string root, string? dockerfilePath = null, int maxEntries = DefaultMaxEntries)
    {
        MaxEntries = maxEntries;
        Root = Path.GetFullPath(root);
        if (!Directory.Exists(Root))
        {
            throw new InvalidFieldException("context", $"'{root}' is not a directory");
        }

        var specific = dockerfilePath is null ? null : dockerfilePath + ".dockerignore";
        var ignoreFile = specific is not null && File.Exists(specific) ? specific : Path.Combine(Root, ".dockerignore");
        Ignore = File.Exists(ignoreFile) ? DockerIgnore.Parse(File.ReadAllText(ignoreFile)) : DockerIgnore.None;
    }

    /// <summary>The context directory, absolute.</summary>
    public string Root { get; }

    /// <summary>Most entries one selection may hold.</summary>
    public int MaxEntries { get; }

    /// <summary>The rules that hide files from the build.</summary>
    public DockerIgnore Ignore { get; }

    /// <summary>
    /// The sources digest of what <paramref name="sources"/> select (paths or wildcards, relative
    /// to the root), with mode and owner as <c>--chmod</c>/<c>--chown</c> set them.
    /// </summary>
    public Digest Digest(IEnumerable<string> sources, int? chmod = null, (long Uid, long Gid)? chown = null) =>
        SourcesDigest.Of(SourcesDigest.Scan(Root, sources.SelectMany(Expand), Ignore, chmod, chown, MaxEntries));

    /// <summary>
    /// The context paths one source names: itself, or for a wildcard (<c>*</c>, <c>?</c>,
    /// <c>[...]</c>, <c>**</c>, matched as in .dockerignore, see <see cref="Glob"/>) every path
    /// that matches and is not ignored. A wildcard that matches nothing is an error, as in BuildKit.
    /// </summary>
    public IEnumerable<string> Expand(string source)
    {
        var clean = source.TrimStart('/');
        clean = clean.Length == 0 ? "." : clean;
        if (clean.IndexOfAny(['*', '?', '[']) < 0)
        {
            return [clean];
        }

        var pattern = Glob.Compile(clean.TrimEnd('/'), "sources");
        var matches = Directory.EnumerateFileSystemEntries(Root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select((p, i) => i < MaxEntries ? p : throw TooMany(MaxEntries))
            .Select(p => Path.GetRelativePath(Root, p).Replace(Path.DirectorySeparatorChar, '/'))
            .Where(p => pattern.IsMatch(p) && !Ignore.IsIgnored(p))
            .Order(StringComparer.Ordinal)
            .ToList();
        return matches.Count > 0 ? matches : throw new InvalidFieldException("sources", $"no source files were specified: '{source}' matches nothing in the build context");
    }

    /// <summary>The refusal of a selection past <paramref name="max"/> entries.</summary>
    internal static InvalidFieldException TooMany(int max) =>
        new("sources", $"the build context holds more than {max} entries under one selection: leave the rest out with .dockerignore");

    /// <summary>Reads <c>--chown=uid[:gid]</c> when both are numeric; names need the image's user database, so they key by their text alone.</summary>
    public static (long Uid, long Gid)? NumericOwner(string? chown)
    {
        if (string.IsNullOrEmpty(chown))
        {
            return null;
        }

        var parts = chown.Split(':', 2);
        if (!long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var uid))
        {
            return null;
        }

        if (parts.Length == 1)
        {
            return (uid, uid);
        }

        return long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var gid) ? (uid, gid) : null;
    }

    /// <summary>Reads an octal <c>--chmod</c>; other forms key by their text alone.</summary>
    public static int? OctalMode(string? chmod)
    {
        if (string.IsNullOrEmpty(chmod) || chmod.Any(c => c is < '0' or > '7'))
        {
            return null;
        }

        return chmod.TrimStart('0').Length <= 4
            ? Convert.ToInt32(chmod, 8)
            : throw new InvalidFieldException("--chmod", $"'{chmod}' is more than the permission bits (at most 7777)");
    }
}
