using CacheService.Cli;
using CacheService.Core.Access;

namespace CacheService.Client.Tests;

/// <summary><c>layercache token</c>: a tokens file edited offline, with each secret shown once.</summary>
public sealed class TokenCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-tokens-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string TokensPath => Path.Combine(_dir, "tokens.json");

    private async Task<(int Exit, string Out, string Error)> Token(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = new CliConsole(output, error, IsTerminal: false, _ => null, TimeProvider.System);
        var exit = await LayercacheCli.RunAsync(["token", .. args, "--tokens-file", TokensPath], console, CancellationToken.None);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task Create_prints_the_secret_alone_once_and_the_file_keeps_only_its_hash_list_shows_names_and_revoke_removes()
    {
        var (exit, output, _) = await Token("create", "--name", "ci-main", "--scope", "write:team/main", "--scope", "read:team/*");
        Assert.Equal(0, exit);
        var secret = output.TrimEnd('\n').Split('\n')[^1];
        Assert.StartsWith(AccessToken.SecretPrefix, secret, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, await File.ReadAllTextAsync(TokensPath), StringComparison.Ordinal);
        var stored = Assert.Single(TokensFile.Read(TokensPath));
        Assert.True(stored.Matches(secret));
        Assert.Equal(["write:team/main", "read:team/*"], stored.Scopes.Select(s => s.ToString()));

        Assert.Equal(0, (await Token("create", "--name", "laptops", "--scope", "read:*")).Exit);
        Assert.Equal(2, (await Token("create", "--name", "ci-main", "--scope", "admin")).Exit); // the name is taken
        var list = await Token("list");
        Assert.Contains("ci-main", list.Out, StringComparison.Ordinal);
        Assert.Contains("read:*", list.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, list.Out, StringComparison.Ordinal);

        Assert.Equal(0, (await Token("revoke", "--name", "ci-main")).Exit);
        Assert.Equal(["laptops"], TokensFile.Read(TokensPath).Select(t => t.Name));
        Assert.Equal(1, (await Token("revoke", "--name", "ci-main")).Exit);
    }

    [Theory]
    [InlineData("scope", "create", "--name", "x")]
    [InlineData("scope", "create", "--name", "x", "--scope", "delete:team/main")]
    [InlineData("name", "create", "--name", "not a name", "--scope", "admin")]
    public async Task A_token_without_a_valid_scope_or_name_is_refused_and_the_file_is_not_touched(string field, params string[] args)
    {
        var (exit, _, error) = await Token(args);
        Assert.Equal(1, exit);
        Assert.Contains(field, error, StringComparison.Ordinal);
        Assert.False(File.Exists(TokensPath));
    }
}

/// <summary>The CLI and the SDK against a server that checks tokens: <c>--token</c>, <c>CACHESERVICE_TOKEN</c>, and what a refusal says.</summary>
public sealed class TokenUseTests : IAsyncLifetime, IDisposable
{
    private readonly Testing.TestTokens _tokens = new(("reader", ["read:team/main"]), ("writer", ["write:team/main"]));
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private Testing.TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await Testing.TestServer.StartAsync(_tokens.ServerArgs);
        _environment["CACHESERVICE_ADDR"] = _server.GrpcAddress;
        _environment["CACHESERVICE_NAMESPACE"] = "team/main";
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _tokens.Dispose();

    private async Task<(int Exit, string Out, string Error)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = new CliConsole(output, error, IsTerminal: false, _environment.GetValueOrDefault, _server.Time);
        var exit = await LayercacheCli.RunAsync(args, console, CancellationToken.None);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task The_cli_sends_the_token_from_the_option_or_the_environment_and_names_what_is_missing()
    {
        var anonymous = await Run("stats");
        Assert.Equal(1, anonymous.Exit);
        Assert.Contains("pass --token or set CACHESERVICE_TOKEN", anonymous.Error, StringComparison.Ordinal);

        Assert.Equal(0, (await Run("stats", "--token", _tokens["reader"])).Exit);
        _environment["CACHESERVICE_TOKEN"] = _tokens["reader"];
        Assert.Equal(0, (await Run("stats")).Exit);

        var denied = await Run("delete", "--key", Testing.Layers.Key("a"));
        Assert.Equal(1, denied.Exit);
        Assert.Contains("token reader lacks scope write:team/main", denied.Error, StringComparison.Ordinal);
        Assert.Equal(0, (await Run("delete", "--key", Testing.Layers.Key("a"), "--token", _tokens["writer"])).Exit);
    }

    [Fact]
    public async Task The_sdk_sends_its_token_on_every_call()
    {
        using var reader = new CacheServiceClient(new CacheServiceClientOptions { Address = new Uri(_server.GrpcAddress), Token = _tokens["reader"] });
        Assert.False((await reader.LookupAsync("team/main", Core.Digest.Of("k"u8))).Hit);
        var denied = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => reader.DeleteAsync("team/main", [Core.Digest.Of("k"u8)]));
        Assert.Equal(Grpc.Core.StatusCode.PermissionDenied, denied.StatusCode);

        using var anonymous = new CacheServiceClient(new CacheServiceClientOptions { Address = new Uri(_server.GrpcAddress), Token = null });
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => anonymous.LookupAsync("team/main", Core.Digest.Of("k"u8)));
        Assert.Equal(Grpc.Core.StatusCode.Unauthenticated, refused.StatusCode);
    }
}
