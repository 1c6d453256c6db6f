using System.Text.RegularExpressions;

namespace CacheService.Dockerfile;

/// <summary>
/// The rules of a <c>.dockerignore</c> file, matched the way Docker and BuildKit match them:
/// patterns in order, the last one that matches decides; <c>!</c> re-includes; <c>*</c> and
/// <c>?</c> stay within one path segment, <c>**</c> spans any number of them; a leading
/// <c>/</c> is ignored (paths are relative to the context root); a pattern that matches a
/// directory also matches everything below it.
/// </summary>
public sealed class DockerIgnore
{
    private readonly List<(Regex Pattern, bool Exclusion)> _rules;

    private DockerIgnore(List<(Regex, bool)> rules) => _rules = rules;

    /// <summary>No rules: nothing is ignored.</summary>
    public static DockerIgnore None { get; } = new([]);

    /// <summary>Reads the text of a .dockerignore file; blank lines and <c>#</c> comments are skipped.</summary>
    public static DockerIgnore Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var rules = new List<(Regex, bool)>();
        foreach (var rawLine in text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var exclusion = line.StartsWith('!');
            var pattern = Clean(exclusion ? line[1..].Trim() : line);
            if (pattern.Length == 0)
            {
                continue;
            }

            rules.Add((Glob.Compile(pattern, ".dockerignore"), exclusion));
        }

        return new DockerIgnore(rules);
    }

    /// <summary>True when <paramref name="path"/> (relative to the context, <c>/</c>-separated) is ignored.</summary>
    public bool IsIgnored(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var candidates = Candidates(Clean(path));
        var ignored = false;
        foreach (var (pattern, exclusion) in _rules)
        {
            // An exclusion can only undo a match, and an inclusion only add one.
            if (exclusion != ignored)
            {
                continue;
            }

            if (candidates.Any(pattern.IsMatch))
            {
                ignored = !exclusion;
            }
        }

        return ignored;
    }

    // The path and each of its parent directories: a pattern matching a directory covers its content.
    private static List<string> Candidates(string path)
    {
        var candidates = new List<string> { path };
        for (var slash = path.LastIndexOf('/'); slash > 0; slash = path.LastIndexOf('/', slash - 1))
        {
            candidates.Add(path[..slash]);
        }

        return candidates;
    }

    // Like Go's filepath.Clean on a slash path, without the leading slash.
    private static string Clean(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Replace('\\', '/').Split('/'))
        {
            if (part is "" or ".")
            {
                continue;
            }

            if (part == ".." && parts.Count > 0 && parts[^1] != "..")
            {
                parts.RemoveAt(parts.Count - 1);
            }
            else
            {
                parts.Add(part);
            }
        }

        return string.Join('/', parts);
    }
}
