using CacheService.Core.Access;

namespace CacheService.Cli;

/// <summary>
/// <c>layercache token create|list|revoke</c>: edits a tokens file offline. The secret of a new
/// token is printed once, alone on the last line, so a script can take it; the file keeps its hash.
/// </summary>
internal static class TokenCommands
{
    public static async Task<int> RunAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var path = args.Value("--tokens-file") ?? throw new UsageException("--tokens-file PATH is required");
        var tokens = TokensFile.Read(path).ToList();
        switch (args.Positional(0))
        {
            case "create":
                var name = args.Value("--name") ?? throw new UsageException("--name NAME is required");
                if (tokens.Any(t => t.Name == name))
                {
                    throw new UsageException($"a token named {name} is already in {path}; revoke it first");
                }

                var (token, secret) = AccessToken.Create(name, [.. args.Values("--scope").Select(s => Scope.Parse(s))], console.Time.GetUtcNow());
                TokensFile.Write(path, [.. tokens, token]);
                await console.Error.WriteLineAsync($"token {name} ({string.Join(", ", token.Scopes)}) added to {path}; its secret follows, shown this once:");
                await console.Out.WriteLineAsync(secret);
                return LayercacheCli.Ok;
            case "list":
                foreach (var listed in tokens)
                {
                    await console.Out.WriteLineAsync($"{listed.Name,-24} {listed.Created:yyyy-MM-dd}  {string.Join(" ", listed.Scopes)}");
                }

                return LayercacheCli.Ok;
            case "revoke":
                var revoked = args.Value("--name") ?? throw new UsageException("--name NAME is required");
                if (tokens.RemoveAll(t => t.Name == revoked) == 0)
                {
                    throw new IOException($"no token named {revoked} in {path}");
                }

                TokensFile.Write(path, tokens);
                await console.Error.WriteLineAsync($"token {revoked} removed from {path}");
                return LayercacheCli.Ok;
            default:
                throw new UsageException("say create, list or revoke");
        }
    }
}
