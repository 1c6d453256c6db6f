using System.Text.Json;
using System.Text.Json.Nodes;

namespace CacheService.Core.Access;

/// <summary>
/// The tokens a server accepts, as a JSON file: <c>{"tokens": [{"name", "secretSha256", "scopes",
/// "created"}]}</c>. It holds hashes only, never a secret. Writes replace the file atomically, so
/// a server that reloads it never reads half of it.
/// </summary>
public static class TokensFile
{
    /// <summary>The tokens in <paramref name="path"/>; none when it does not exist.</summary>
    /// <exception cref="InvalidDataException">The file is not a tokens file, or has a bad entry (named).</exception>
    public static IReadOnlyList<AccessToken> Read(string path)
    {
        if (!File.Exists(path))
        {
            return [];
        }

        try
        {
            var tokens = new List<AccessToken>();
            foreach (var entry in JsonNode.Parse(File.ReadAllText(path))?["tokens"]?.AsArray() ?? throw new InvalidDataException("no \"tokens\" array"))
            {
                var name = (string?)entry?["name"];
                AccessToken.ValidateName(name);
                var hash = (string?)entry!["secretSha256"];
                if (hash is not { Length: 64 } || !hash.All(char.IsAsciiHexDigitLower))
                {
                    throw new InvalidDataException($"token {name}: secretSha256 is not 64 lower-case hex digits");
                }

                var scopes = entry["scopes"]?.AsArray().Select(s => Scope.Parse((string?)s, $"token {name}: scope")).ToList() ?? [];
                tokens.Add(new AccessToken(name!, hash, scopes, (DateTimeOffset?)entry["created"] ?? DateTimeOffset.UnixEpoch));
            }

            if (tokens.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            {
                throw new InvalidDataException($"token {repeated.Key} is there twice");
            }

            return tokens;
        }
        catch (Exception e) when (e is JsonException or InvalidFieldException or InvalidOperationException or FormatException or InvalidDataException)
        {
            throw new InvalidDataException($"{path} is not a valid tokens file: {e.Message}", e);
        }
    }

    /// <summary>Replaces <paramref name="path"/> with <paramref name="tokens"/>, atomically.</summary>
    public static void Write(string path, IReadOnlyList<AccessToken> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var document = new JsonObject
        {
            ["tokens"] = new JsonArray([.. tokens.Select(t => (JsonNode)new JsonObject
            {
                ["name"] = t.Name,
                ["secretSha256"] = t.SecretSha256,
                ["scopes"] = new JsonArray([.. t.Scopes.Select(s => (JsonNode)s.ToString())]),
                ["created"] = t.Created,
            })]),
        };
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var partial = full + ".partial";
        File.WriteAllText(partial, document.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.Move(partial, full, overwrite: true);
    }
}
