using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace CacheService.Testing;

/// <summary>One path of an image's file tree: what `ls -l` would show, with the content's digest.</summary>
public sealed record TreeEntry(string Type, int Mode, int Uid, int Gid, string Content);

/// <summary>
/// The file tree an image in an OCI layout unpacks to: its layers applied in order, whiteouts
/// honoured (<c>.wh.NAME</c> deletes, <c>.wh..wh..opq</c> empties a directory), as a runtime sees it.
/// </summary>
public static class ImageTrees
{
    /// <summary>Reads the image named <paramref name="name"/> in the layout at <paramref name="layout"/>.</summary>
    public static async Task<SortedDictionary<string, TreeEntry>> ReadAsync(string layout, string name)
    {
        var tree = new SortedDictionary<string, TreeEntry>(StringComparer.Ordinal);
        foreach (var layer in (await ManifestAsync(layout, name)).GetProperty("layers").EnumerateArray())
        {
            await using var tar = OpenLayer(layout, layer);
            await ApplyAsync(tree, tar);
        }

        return tree;
    }

    /// <summary>The text of the file <paramref name="path"/> (absolute) as the image's top-most layer that has it holds it.</summary>
    public static async Task<string> ReadFileAsync(string layout, string name, string path)
    {
        string? text = null;
        foreach (var layer in (await ManifestAsync(layout, name)).GetProperty("layers").EnumerateArray())
        {
            await using var tar = OpenLayer(layout, layer);
            using var reader = new TarReader(tar);
            while (await reader.GetNextEntryAsync() is { } entry)
            {
                if ("/" + entry.Name.TrimStart('.', '/') == path && entry.DataStream is { } data)
                {
                    using var content = new StreamReader(data);
                    text = await content.ReadToEndAsync();
                }
            }
        }

        return text ?? throw new FileNotFoundException($"{path} is in no layer of {name}");
    }

    /// <summary>The image's config (the whole OCI config document).</summary>
    public static async Task<JsonElement> ConfigAsync(string layout, string name)
    {
        var manifest = await ManifestAsync(layout, name);
        return JsonDocument.Parse(await File.ReadAllBytesAsync(Blob(layout, manifest.GetProperty("config").GetProperty("digest").GetString()!))).RootElement;
    }

    private static async Task<JsonElement> ManifestAsync(string layout, string name)
    {
        var index = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(layout, "index.json"))).RootElement;
        var entry = index.GetProperty("manifests").EnumerateArray()
            .Last(m => m.TryGetProperty("annotations", out var a) && a.GetProperty("org.opencontainers.image.ref.name").GetString() == name);
        return JsonDocument.Parse(await File.ReadAllBytesAsync(Blob(layout, entry.GetProperty("digest").GetString()!))).RootElement;
    }

    private static Stream OpenLayer(string layout, JsonElement layer)
    {
        var file = File.OpenRead(Blob(layout, layer.GetProperty("digest").GetString()!));
        return layer.GetProperty("mediaType").GetString()!.EndsWith("gzip", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    private static string Blob(string layout, string digest) => Path.Combine(layout, "blobs", "sha256", digest["sha256:".Length..]);

    private static async Task ApplyAsync(SortedDictionary<string, TreeEntry> tree, Stream tar)
    {
        using var reader = new TarReader(tar);
        while (await reader.GetNextEntryAsync() is { } entry)
        {
            var path = "/" + entry.Name.TrimStart('.', '/').TrimEnd('/');
            var dir = path[..(path.LastIndexOf('/') + 1)];
            var leaf = path[(path.LastIndexOf('/') + 1)..];
            if (leaf == ".wh..wh..opq")
            {
                foreach (var below in tree.Keys.Where(k => k.StartsWith(dir, StringComparison.Ordinal) && k != dir.TrimEnd('/')).ToList())
                {
                    tree.Remove(below);
                }

                continue;
            }

            if (leaf.StartsWith(".wh.", StringComparison.Ordinal))
            {
                var gone = dir + leaf[4..];
                foreach (var below in tree.Keys.Where(k => k == gone || k.StartsWith(gone + "/", StringComparison.Ordinal)).ToList())
                {
                    tree.Remove(below);
                }

                continue;
            }

            var content = entry.EntryType switch
            {
                TarEntryType.RegularFile or TarEntryType.V7RegularFile when entry.DataStream is { } data => "sha256:" + Convert.ToHexStringLower(await SHA256.HashDataAsync(data)),
                TarEntryType.SymbolicLink or TarEntryType.HardLink => entry.LinkName,
                _ => string.Empty,
            };
            var type = entry.EntryType switch
            {
                TarEntryType.Directory => "dir",
                TarEntryType.SymbolicLink => "symlink",
                TarEntryType.HardLink => "hardlink",
                _ => "file",
            };
            tree[path == string.Empty ? "/" : path] = new TreeEntry(type, (int)entry.Mode, entry.Uid, entry.Gid, content);
        }
    }
}
