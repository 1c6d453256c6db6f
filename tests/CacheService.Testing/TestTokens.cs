using CacheService.Core.Access;

namespace CacheService.Testing;

/// <summary>A tokens file in a directory of its own, and the secrets of its tokens, by name.</summary>
public sealed class TestTokens : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("cs-tokens-").FullName;
    private readonly Dictionary<string, string> _secrets = new(StringComparer.Ordinal);

    /// <summary>A file with one token per entry: a name and its scopes as written (<c>read:team/main</c>).</summary>
    public TestTokens(params (string Name, string[] Scopes)[] tokens)
    {
        Path = System.IO.Path.Combine(_directory, "tokens.json");
        var made = new List<AccessToken>();
        foreach (var (name, scopes) in tokens)
        {
            var (token, secret) = AccessToken.Create(name, [.. scopes.Select(s => Scope.Parse(s))], DateTimeOffset.UnixEpoch);
            made.Add(token);
            _secrets[name] = secret;
        }

        TokensFile.Write(Path, made);
    }

    /// <summary>The tokens file.</summary>
    public string Path { get; }

    /// <summary>The server arguments that make it check these tokens, reading the file again on every request.</summary>
    public string[] ServerArgs => [$"--CacheService:Auth:TokensFile={Path}", "--CacheService:Auth:ReloadInterval=00:00:00"];

    /// <summary>The secret of token <paramref name="name"/>.</summary>
    public string this[string name] => _secrets[name];

    /// <summary>Removes token <paramref name="name"/> from the file, as <c>layercache token revoke</c> does.</summary>
    public void Revoke(string name) => TokensFile.Write(Path, [.. TokensFile.Read(Path).Where(t => t.Name != name)]);

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
