using CacheService.Core.Access;

namespace CacheService.Core.Tests;

/// <summary>Scopes, token secrets and the tokens file: what a token may do, and what is kept of it.</summary>
public sealed class AccessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-access-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("read:team/main", AccessLevel.Read, "team/main")]
    [InlineData("write:team/*", AccessLevel.Write, "team/*")]
    [InlineData("read:*", AccessLevel.Read, "*")]
    [InlineData("admin", AccessLevel.Admin, "*")]
    public void Scopes_parse_and_print_back_the_same(string text, AccessLevel level, string pattern)
    {
        var scope = Scope.Parse(text);
        Assert.Equal((level, pattern), (scope.Level, scope.Pattern));
        Assert.Equal(text == "admin" ? "admin" : text, scope.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("read")]
    [InlineData("read:")]
    [InlineData("delete:team/main")]
    [InlineData("read:Team/Main")]
    [InlineData("write:team/**")]
    [InlineData("write:team*")]
    [InlineData("admin:team")]
    public void A_malformed_scope_is_refused_naming_the_field(string text)
    {
        var e = Assert.Throws<InvalidFieldException>(() => Scope.Parse(text));
        Assert.Equal("scope", e.Field);
    }

    [Theory]
    [InlineData("read:team/main", AccessLevel.Read, "team/main", true)]
    [InlineData("read:team/main", AccessLevel.Write, "team/main", false)]
    [InlineData("read:team/main", AccessLevel.Read, "team/main2", false)]
    [InlineData("read:team/main", AccessLevel.Read, "team/main/x", false)]
    [InlineData("write:team/main", AccessLevel.Read, "team/main", true)]
    [InlineData("write:team/main", AccessLevel.Write, "team/main", true)]
    [InlineData("write:team/main", AccessLevel.Admin, "team/main", false)]
    [InlineData("write:team/*", AccessLevel.Write, "team/pr-42", true)]
    [InlineData("write:team/*", AccessLevel.Write, "team/pr/42", true)]
    [InlineData("write:team/*", AccessLevel.Write, "team", false)]
    [InlineData("write:team/*", AccessLevel.Write, "teams/main", false)]
    [InlineData("read:*", AccessLevel.Read, "anything/at/all", true)]
    [InlineData("read:*", AccessLevel.Write, "anything", false)]
    [InlineData("admin", AccessLevel.Admin, "x", true)]
    [InlineData("admin", AccessLevel.Write, "x", true)]
    public void A_scope_allows_exactly_its_level_and_below_on_the_namespaces_its_pattern_covers(string scope, AccessLevel level, string ns, bool allowed) =>
        Assert.Equal(allowed, Scope.Parse(scope).Allows(level, ns));

    [Fact]
    public void A_new_token_has_a_random_256_bit_secret_that_it_keeps_only_as_a_hash()
    {
        var (token, secret) = AccessToken.Create("ci-main", [Scope.Parse("write:team/main")], DateTimeOffset.UnixEpoch);
        var (_, other) = AccessToken.Create("ci-main", [Scope.Parse("write:team/main")], DateTimeOffset.UnixEpoch);
        Assert.StartsWith(AccessToken.SecretPrefix, secret, StringComparison.Ordinal);
        Assert.Equal(32, Convert.FromBase64String(secret[AccessToken.SecretPrefix.Length..].Replace('-', '+').Replace('_', '/') + "=").Length);
        Assert.NotEqual(secret, other);
        Assert.DoesNotContain(secret[AccessToken.SecretPrefix.Length..], token.ToString(), StringComparison.Ordinal);
        Assert.True(token.Matches(secret));
        Assert.False(token.Matches(other));
        Assert.False(token.Matches(string.Empty));
        Assert.True(token.Allows(AccessLevel.Read, "team/main"));
        Assert.False(token.Allows(AccessLevel.Write, "team/pr-1"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("has space")]
    [InlineData("slash/name")]
    public void A_token_needs_a_plain_name_and_a_scope(string name)
    {
        Assert.Equal("name", Assert.Throws<InvalidFieldException>(() => AccessToken.Create(name, [Scope.Parse("admin")], DateTimeOffset.UnixEpoch)).Field);
        Assert.Equal("scope", Assert.Throws<InvalidFieldException>(() => AccessToken.Create("ok", [], DateTimeOffset.UnixEpoch)).Field);
    }

    [Fact]
    public void The_tokens_file_round_trips_and_holds_no_secret()
    {
        var path = Path.Combine(_dir, "conf", "tokens.json");
        Assert.Empty(TokensFile.Read(path)); // not there yet: no tokens
        var (main, mainSecret) = AccessToken.Create("ci-main", [Scope.Parse("write:team/main")], new DateTimeOffset(2026, 12, 1, 0, 0, 0, TimeSpan.Zero));
        var (pr, _) = AccessToken.Create("ci-pr", [Scope.Parse("write:team/pr/*"), Scope.Parse("read:team/main")], DateTimeOffset.UnixEpoch);
        TokensFile.Write(path, [main, pr]);

        var read = TokensFile.Read(path);
        Assert.Equal([main.Name, pr.Name], read.Select(t => t.Name));
        Assert.Equal(main.SecretSha256, read[0].SecretSha256);
        Assert.Equal(main.Created, read[0].Created);
        Assert.Equal(pr.Scopes, read[1].Scopes);
        Assert.True(read[0].Matches(mainSecret));
        Assert.DoesNotContain(mainSecret, File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(path)!, "*.partial"));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("{}")]
    [InlineData("{\"tokens\": [{\"name\": \"a\", \"secretSha256\": \"xyz\", \"scopes\": [\"admin\"]}]}")]
    [InlineData("{\"tokens\": [{\"name\": \"a\", \"secretSha256\": \"0000000000000000000000000000000000000000000000000000000000000000\", \"scopes\": [\"sudo\"]}]}")]
    [InlineData("{\"tokens\": [{\"name\": \"a\", \"secretSha256\": \"0000000000000000000000000000000000000000000000000000000000000000\", \"scopes\": [\"admin\"]}, {\"name\": \"a\", \"secretSha256\": \"1111111111111111111111111111111111111111111111111111111111111111\", \"scopes\": [\"admin\"]}]}")]
    public void A_broken_tokens_file_is_refused_naming_the_file(string content)
    {
        var path = Path.Combine(_dir, "tokens.json");
        File.WriteAllText(path, content);
        Assert.Contains(path, Assert.Throws<InvalidDataException>(() => TokensFile.Read(path)).Message, StringComparison.Ordinal);
    }
}
