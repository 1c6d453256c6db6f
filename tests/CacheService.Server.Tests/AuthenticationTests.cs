using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace CacheService.Server.Tests;

/// <summary>
/// How credentials are proved and lose their force: Docker's token flow on the registry, a
/// revoked token refused at once without a restart, failed attempts throttled per address, and a
/// server that will not start open beyond loopback.
/// </summary>
public sealed class AuthenticationTests : IDisposable
{
    private const string Main = "team/main";

    private readonly TestTokens _tokens = new(
        ("reader", ["read:team/main"]),
        ("writer", ["write:team/main"]),
        ("admin", ["admin"]));

    public void Dispose() => _tokens.Dispose();

    [Fact]
    public async Task The_token_endpoint_grants_what_the_secret_allows_and_the_bearer_token_works_within_it()
    {
        await using var server = await TestServer.StartAsync(_tokens.ServerArgs);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };

        // A client that pushes asks for pull and push; the writer gets both.
        var writer = await TokenAsync(http, "writer", $"repository:{Main}:pull,push");
        using var pushing = Bearer(server, writer);
        var pushed = await pushing.PushImageAsync(Main, "v1", seed: 160);

        // The reader asks for the same and gets pull only: its pull works, its push is denied.
        var reader = await TokenAsync(http, "reader", $"repository:{Main}:pull,push");
        using var pulling = Bearer(server, reader);
        using (var pull = await pulling.GetAsync($"/v2/{Main}/manifests/v1"))
        {
            Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        }

        using (var push = await pulling.PutManifestAsync(Main, "v2", pushed.Manifest))
        {
            Assert.Equal(HttpStatusCode.Forbidden, push.StatusCode);
            Assert.Contains("\"DENIED\"", await push.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The writer's pull-only token does not push, but the answer sends it back for a push
        // token (what Docker clients do), since the secret behind it could have one.
        var pullOnly = await TokenAsync(http, "writer", $"repository:{Main}:pull");
        using var narrowed = Bearer(server, pullOnly);
        using (var push = await narrowed.PutManifestAsync(Main, "v2", pushed.Manifest))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
            Assert.Contains($"scope=\"repository:{Main}:pull,push\"", push.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
        }

        // An admin token issued for one repository does not open another.
        using var adminForMain = Bearer(server, await TokenAsync(http, "admin", $"repository:{Main}:pull"));
        using (var elsewhere = await adminForMain.GetAsync("/v2/other/repo/tags/list"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, elsewhere.StatusCode);
        }

        // A wrong secret gets a Basic challenge, and no token.
        using var wrong = new HttpRequestMessage(HttpMethod.Get, $"/auth/token?service=cacheservice&scope=repository:{Main}:pull");
        wrong.Headers.Authorization = Basic("lcs_not-a-secret");
        using var refused = await http.SendAsync(wrong);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("Basic realm=\"cacheservice\"", refused.Headers.WwwAuthenticate.ToString());

        // Tokens expire: after their lifetime, even the writer's is refused.
        server.Time.Advance(TimeSpan.FromMinutes(6));
        using var late = await pushing.GetAsync($"/v2/{Main}/tags/list");
        Assert.Equal(HttpStatusCode.Unauthorized, late.StatusCode);
    }

    [Fact]
    public async Task A_revoked_token_is_refused_at_once_on_both_ports_and_a_new_one_admitted_without_a_restart()
    {
        await using var server = await TestServer.StartAsync(_tokens.ServerArgs);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        var bearer = await TokenAsync(http, "reader", $"repository:{Main}:pull");
        var reader = Client(server, _tokens["reader"]);
        await reader.GetStatsAsync(new GetStatsRequest { Namespace = Main });

        _tokens.Revoke("reader");

        var grpc = await Assert.ThrowsAsync<RpcException>(() => reader.GetStatsAsync(new GetStatsRequest { Namespace = Main }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, grpc.StatusCode);
        using var registry = Bearer(server, bearer);
        using (var tags = await registry.GetAsync($"/v2/{Main}/tags/list"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, tags.StatusCode); // a bearer token dies with its token
        }

        var (token, secret) = Core.Access.AccessToken.Create("late", [Core.Access.Scope.Parse("read:team/main")], DateTimeOffset.UnixEpoch);
        Core.Access.TokensFile.Write(_tokens.Path, [.. Core.Access.TokensFile.Read(_tokens.Path), token]);
        Assert.Equal(Main, (await Client(server, secret).GetStatsAsync(new GetStatsRequest { Namespace = Main })).Namespace);

        // A file that turns bad keeps the tokens read last.
        await File.WriteAllTextAsync(_tokens.Path, "{ not json");
        Assert.Equal(Main, (await Client(server, secret).GetStatsAsync(new GetStatsRequest { Namespace = Main })).Namespace);
    }

    [Fact]
    public async Task The_tokens_file_is_read_again_only_after_the_reload_interval()
    {
        await using var server = await TestServer.StartAsync($"--CacheService:Auth:TokensFile={_tokens.Path}", "--CacheService:Auth:ReloadInterval=00:00:10");
        var writer = Client(server, _tokens["writer"]);
        await writer.GetStatsAsync(new GetStatsRequest { Namespace = Main });
        _tokens.Revoke("writer");
        await writer.GetStatsAsync(new GetStatsRequest { Namespace = Main }); // within the interval: the file is not read yet

        server.Time.Advance(TimeSpan.FromSeconds(10));
        var refused = await Assert.ThrowsAsync<RpcException>(() => writer.GetStatsAsync(new GetStatsRequest { Namespace = Main }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, refused.StatusCode);
    }

    [Fact]
    public async Task An_address_that_keeps_failing_is_throttled_even_with_a_good_secret_and_others_are_not_affected()
    {
        await using var server = await TestServer.StartAsync([.. _tokens.ServerArgs, "--CacheService:Auth:FailedAttemptsPerMinute=3"]);
        var bad = Client(server, "lcs_guess");
        for (var i = 0; i < 3; i++)
        {
            var failed = await Assert.ThrowsAsync<RpcException>(() => bad.GetStatsAsync(new GetStatsRequest { Namespace = Main }).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, failed.StatusCode);
        }

        var throttled = await Assert.ThrowsAsync<RpcException>(() => Client(server, _tokens["admin"]).GetStatsAsync(new GetStatsRequest { Namespace = Main }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, throttled.StatusCode);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v2/");
        request.Headers.Authorization = Basic(_tokens["admin"]);
        using var registry = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.TooManyRequests, registry.StatusCode);
        Assert.NotNull(registry.Headers.RetryAfter);

        // Requests without credentials are not throttled: there is nothing to guess.
        using var health = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    [Fact]
    public async Task Expired_bearer_tokens_are_sent_back_for_new_ones_without_counting_as_failures()
    {
        await using var server = await TestServer.StartAsync([.. _tokens.ServerArgs, "--CacheService:Auth:FailedAttemptsPerMinute=2"]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        using var expired = Bearer(server, await TokenAsync(http, "reader", $"repository:{Main}:pull"));
        server.Time.Advance(TimeSpan.FromMinutes(6));
        for (var i = 0; i < 5; i++)
        {
            using var refused = await expired.GetAsync($"/v2/{Main}/tags/list");
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode); // never 429: a CI farm behind one address renews often
        }

        using var renewed = Bearer(server, await TokenAsync(http, "reader", $"repository:{Main}:pull"));
        using var tags = await renewed.GetAsync($"/v2/{Main}/tags/list");
        Assert.NotEqual(HttpStatusCode.Unauthorized, tags.StatusCode);
        Assert.NotEqual(HttpStatusCode.TooManyRequests, tags.StatusCode);
    }

    [Theory]
    [InlineData("Bearer")]
    [InlineData("Bearer ")]
    [InlineData("Bearer lcs_")]
    [InlineData("Basic !!!not-base64")]
    [InlineData("Basic bm8tY29sb24=")] // "no-colon"
    [InlineData("Digest username=x")]
    [InlineData("lcr.e30.AAAA")]
    [InlineData("Bearer lcr.e30.AAAA")]
    [InlineData("Bearer lcr.!!.??")]
    [InlineData("Bearer lcr.nodot")]
    public async Task Garbage_credentials_are_refused_as_unauthenticated_on_both_ports_never_as_a_fault(string authorization)
    {
        await using var server = await TestServer.StartAsync(_tokens.ServerArgs);
        var client = new LayerCache.LayerCacheClient(server.Channel.Intercept(metadata =>
        {
            metadata.Add("authorization", authorization);
            return metadata;
        }));
        var grpc = await Assert.ThrowsAsync<RpcException>(() => client.GetStatsAsync(new GetStatsRequest { Namespace = Main }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, grpc.StatusCode);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v2/{Main}/tags/list");
        request.Headers.TryAddWithoutValidation("Authorization", authorization);
        using var registry = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Unauthorized, registry.StatusCode);
        Assert.StartsWith("Bearer realm=", registry.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_tampered_bearer_token_is_refused_and_garbage_scopes_grant_nothing()
    {
        await using var server = await TestServer.StartAsync(_tokens.ServerArgs);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };

        // The writer's pull token, its payload swapped for one that claims push: the MAC no longer matches.
        var pull = await TokenAsync(http, "writer", $"repository:{Main}:pull");
        var push = await TokenAsync(http, "writer", $"repository:{Main}:pull,push");
        var tampered = pull[..pull.LastIndexOf('.')].Replace(pull.Split('.')[1], push.Split('.')[1], StringComparison.Ordinal) + pull[pull.LastIndexOf('.')..];
        using (var forged = Bearer(server, tampered))
        using (var refused = await forged.PutManifestAsync(Main, "v1", []))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        // Scopes that are not repository:NAME:ACTIONS, or name no valid namespace, are ignored.
        var garbage = await TokenAsync(http, "admin", "garbage&scope=repository:Bad_Name:pull&scope=registry:catalog:*&scope=repository::push&scope=" + new string('x', 4000));
        using var nothing = Bearer(server, garbage);
        using var tags = await nothing.GetAsync($"/v2/{Main}/tags/list");
        Assert.Equal(HttpStatusCode.Unauthorized, tags.StatusCode);
    }

    [Fact]
    public async Task A_server_beyond_loopback_without_tokens_refuses_to_start_and_says_how_to_fix_it()
    {
        var refused = await Assert.ThrowsAsync<CacheService.Server.Hosting.StartupException>(() => TestServer.StartAsync("--CacheService:Server:ListenAddress=0.0.0.0"));
        Assert.Contains("CacheService:Auth:TokensFile", refused.Message, StringComparison.Ordinal);
        Assert.Contains("AllowAnonymous", refused.Message, StringComparison.Ordinal);

        var missing = await Assert.ThrowsAsync<CacheService.Server.Hosting.StartupException>(() => TestServer.StartAsync("--CacheService:Auth:TokensFile=/nonexistent/tokens.json"));
        Assert.Contains("/nonexistent/tokens.json does not exist", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Anonymous_opt_in_beyond_loopback_serves_reads_only()
    {
        await using var server = await TestServer.StartAsync("--CacheService:Server:ListenAddress=0.0.0.0", "--CacheService:Auth:AllowAnonymous=true");
        var anonymous = server.Client;
        Assert.Equal(Main, (await anonymous.GetStatsAsync(new GetStatsRequest { Namespace = Main })).Namespace);
        var write = await Assert.ThrowsAsync<RpcException>(() => anonymous.DeleteAsync(new DeleteRequest { Namespace = Main, All = true }).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, write.StatusCode);
        Assert.Contains("write:team/main", write.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_tokens_and_anonymous_reads_a_laptop_pulls_without_one_and_ci_pushes_with_one()
    {
        await using var server = await TestServer.StartAsync([.. _tokens.ServerArgs, "--CacheService:Auth:AllowAnonymous=true"]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        using var writer = Bearer(server, await TokenAsync(http, "writer", $"repository:{Main}:pull,push"));
        await writer.PushImageAsync(Main, "v1", seed: 161);

        // Anonymous clients of the token flow ask for a token without credentials.
        using var anonymousToken = await http.GetAsync($"/auth/token?service=cacheservice&scope=repository:{Main}:pull,push");
        Assert.Equal(HttpStatusCode.OK, anonymousToken.StatusCode);
        using var laptop = Bearer(server, JsonDocument.Parse(await anonymousToken.Content.ReadAsStringAsync()).RootElement.GetProperty("token").GetString()!);
        using (var pull = await laptop.GetAsync($"/v2/{Main}/manifests/v1"))
        {
            Assert.Equal(HttpStatusCode.OK, pull.StatusCode);
        }

        using var push = await laptop.PutManifestAsync(Main, "v2", []);
        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
    }

    private static AuthenticationHeaderValue Basic(string secret) => new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:" + secret)));

    private async Task<string> TokenAsync(HttpClient http, string principal, string scope)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/auth/token?service=cacheservice&scope={scope}");
        request.Headers.Authorization = Basic(_tokens[principal]);
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(body.GetProperty("token").GetString(), body.GetProperty("access_token").GetString());
        Assert.Equal(300, body.GetProperty("expires_in").GetInt32());
        return body.GetProperty("token").GetString()!;
    }

    private static HttpClient Bearer(TestServer server, string token)
    {
        var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http;
    }

    private static LayerCache.LayerCacheClient Client(TestServer server, string secret) =>
        new(server.Channel.Intercept(metadata =>
        {
            metadata.Add("authorization", "Bearer " + secret);
            return metadata;
        }));
}
