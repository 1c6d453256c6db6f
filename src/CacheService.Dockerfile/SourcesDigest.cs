using System.Globalization;
using System.Security.Cryptography;
using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>One file, directory or symlink a COPY/ADD reads, as it enters the sources digest.</summary>
/// <param name="Path">Relative to the context root, <c>/</c>-separated.</param>
/// <param name="Kind">What the entry is.</param>
/// <param name="Mode">Permission bits after <c>--chmod</c>.</param>
/// <param name="Uid">Owner after <c>--chown</c>.</param>
/// <param name="Gid">Group after <c>--chown</c>.</param>
/// <param name="Size">Bytes of a file; 0 otherwise.</param>
/// <param name="Content">SHA-256 of a file's bytes; null otherwise.</param>
/// <param name="LinkTarget">A symlink's target; null otherwise.</param>
public sealed record SourceEntry(string Path, SourceKind Kind, int Mode, long Uid, long Gid, long Size, Digest? Content, string? LinkTarget);

/// <summary>The kinds of entries a build context holds.</summary>
public enum SourceKind
{
    /// <summary>A regular file.</summary>
    File,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A symbolic link inside a copied directory (copied as a link, not followed).</summary>
    Symlink,
}

/// <summary>
/// The content digest of the sources a COPY or ADD selects: one SHA-256 over the entries sorted
/// by the UTF-8 bytes of their paths, each field length-prefixed (docs/cache-key.md). File
/// names, types, modes, owners, sizes, contents and link targets count; modification times do
/// not, so touching a file or checking it out again keeps the key.
/// </summary>
public static class SourcesDigest
{
    private const string Domain = "cacheservice/sources/v2";

    // The permission bits every symlink has on Linux.
    private const int LinkMode = 0x1FF;

    /// <summary>Domain tag of several sources combined (a RUN with more than one bind mount).</summary>
    public const string CombinedDomain = "cacheservice/sources/v2/combined";

    /// <summary>The digest of <paramref name="entries"/>; their order does not matter.</summary>
    public static Digest Of(IEnumerable<SourceEntry> entries)
    {
        var sorted = entries.OrderBy(e => e.Path, Preimage.Utf8Order).ToList();
        var preimage = new Preimage().Field(Domain).Count(sorted.Count);
        foreach (var e in sorted)
        {
            preimage
                .Field(e.Path)
                .Field(e.Kind switch { SourceKind.File => "file", SourceKind.Directory => "dir", _ => "symlink" })
                .Field(Convert.ToString(e.Mode & 0xFFF, 8))
                .Field(e.Uid.ToString(CultureInfo.InvariantCulture))
                .Field(e.Gid.ToString(CultureInfo.InvariantCulture))
                .Field(e.Size.ToString(CultureInfo.InvariantCulture))
                .Field(e.Content?.Value ?? string.Empty)
                .Field(e.LinkTarget ?? string.Empty);
        }

        return preimage.Hash();
    }

    /// <summary>
    /// Reads the entries under <paramref name="sources"/> (files or directories, relative to
    /// <paramref name="contextRoot"/>, taken whole) that <paramref name="ignore"/> does not
    /// exclude, with the owner and mode a COPY would give them.
    /// </summary>
    /// <remarks>
    /// As BuildKit and buildah copy: a source that is a symlink (or passes through one) is followed,
    /// and what it points at enters the digest under the source's name; symlinks inside a copied
    /// directory are copied as links, so their link text enters, and they are not followed. Links
    /// resolve inside the context, its root standing for <c>/</c>: none leads out of it.
    /// </remarks>
    /// <exception cref="InvalidFieldException">A source outside the context or missing, a loop of links, a name that is not UTF-8, a FIFO or device, or more than <paramref name="maxEntries"/> entries.</exception>
    public static List<SourceEntry> Scan(string contextRoot, IEnumerable<string> sources, DockerIgnore ignore, int? chmod = null, (long Uid, long Gid)? chown = null, int maxEntries = BuildContext.DefaultMaxEntries)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(ignore);
        var root = System.IO.Path.GetFullPath(contextRoot);
        var entries = new Dictionary<string, SourceEntry>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            if (source.Contains('\0', StringComparison.Ordinal))
            {
                throw new InvalidFieldException("sources", $"'{source}' holds a NUL character, which no path can");
            }

            var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(root, source));
            if (full != root && !full.StartsWith(root + System.IO.Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new InvalidFieldException("sources", $"'{source}' is outside the build context");
            }

            var named = Relative(root, full);
            var target = Resolve(root, named) ?? throw new InvalidFieldException("sources", $"'{source}' does not exist in the build context");
            if (Relative(root, target) is var real && real != "." && ignore.IsIgnored(real))
            {
                continue; // a link to what .dockerignore hides finds nothing, as the ignored file is never sent
            }

            Add(entries, named, Directory.Exists(target) ? new DirectoryInfo(target) : new FileInfo(target), ignore, chmod, chown, maxEntries);
        }

        return [.. entries.Values];
    }

    // An entry under the name the build sees, and, for a directory, everything in it; links inside are not followed.
    private static void Add(Dictionary<string, SourceEntry> entries, string name, FileSystemInfo item, DockerIgnore ignore, int? chmod, (long Uid, long Gid)? chown, int maxEntries)
    {
        if (name != "." && ignore.IsIgnored(name))
        {
            return;
        }

        if (name != ".")
        {
            entries[name] = Entry(name, item, chmod, chown);
            if (entries.Count > maxEntries)
            {
                throw BuildContext.TooMany(maxEntries);
            }
        }

        if (item is DirectoryInfo directory && item.LinkTarget is null)
        {
            // An unreadable directory fails the plan (as BuildKit fails the build), never drops out of the key.
            foreach (var child in directory.EnumerateFileSystemInfos("*", new EnumerationOptions { RecurseSubdirectories = false, AttributesToSkip = 0, IgnoreInaccessible = false }))
            {
                if (child.Name.Contains('\uFFFD', StringComparison.Ordinal))
                {
                    throw new InvalidFieldException("sources", $"a name in '{name}' is not valid UTF-8 ('{child.Name}' with the bad bytes shown as U+FFFD): rename it");
                }

                Add(entries, name == "." ? child.Name : name + "/" + child.Name, child, ignore, chmod, chown, maxEntries);
            }
        }
    }

    // The path `relative` names in the context with every symlink on the way followed, the root
    // standing for `/` (so `..` stops there and an absolute target starts there); null when nothing is there.
    private static string? Resolve(string root, string relative)
    {
        var pending = new Stack<string>(Parts(relative).Reverse());
        var current = root;
        for (var links = 0; pending.TryPop(out var part);)
        {
            if (part == "..")
            {
                current = current == root ? root : System.IO.Path.GetDirectoryName(current)!;
                continue;
            }

            var next = System.IO.Path.Combine(current, part);
            var info = new FileInfo(next);
            if (info.LinkTarget is { } link)
            {
                if (++links > 40)
                {
                    throw new InvalidFieldException("sources", $"'{relative}' has too many levels of symbolic links");
                }

                foreach (var linked in Parts(link).Reverse())
                {
                    pending.Push(linked);
                }

                current = link.StartsWith('/') ? root : current;
                continue;
            }

            if (!info.Exists && !Directory.Exists(next))
            {
                return null;
            }

            current = next;
        }

        return current;
    }

    private static IEnumerable<string> Parts(string path) => path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".");

    private static string Relative(string root, string full) => System.IO.Path.GetRelativePath(root, full).Replace(System.IO.Path.DirectorySeparatorChar, '/');

    private static SourceEntry Entry(string relative, FileSystemInfo item, int? chmod, (long Uid, long Gid)? chown)
    {
        var mode = chmod ?? (int)item.UnixFileMode;
        var (uid, gid) = chown ?? (0, 0);
        if (item.LinkTarget is { } target)
        {
            // A link's own mode is always 777 on Linux (.NET reports its target's, which a copy
            // of the link does not carry), and --chmod does not apply to it.
            return new SourceEntry(relative, SourceKind.Symlink, LinkMode, uid, gid, 0, null, target);
        }

        if (item is DirectoryInfo)
        {
            return new SourceEntry(relative, SourceKind.Directory, mode, uid, gid, 0, null, null);
        }

        if (FileTypes.Special(item.FullName) is { } special)
        {
            throw new InvalidFieldException("sources", $"'{relative}' is {special}: only files, directories and symlinks can be copied");
        }

        using var stream = File.OpenRead(item.FullName);
        var content = Digest.FromHash(SHA256.HashData(stream));
        return new SourceEntry(relative, SourceKind.File, mode, uid, gid, ((FileInfo)item).Length, content, null);
    }
}
