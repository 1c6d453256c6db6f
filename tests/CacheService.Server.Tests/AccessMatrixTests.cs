using System.Net;
using System.Net.Http.Headers;
using System.Text;
using CacheService.Api.V1;
using CacheService.Server.Access;
using CacheService.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace CacheService.Server.Tests;

/// <summary>
/// Every RPC and every registry endpoint, called without credentials and with each kind of token:
/// a reader of the namespace, a writer of another namespace, a writer of it and an admin. A call
/// the caller may not make is refused with the status that says so (no credentials:
/// UNAUTHENTICATED or 401 with a challenge; credentials without the scope: PERMISSION_DENIED or
/// 403 DENIED), and the refused writes leave the namespace as it was; every allowed call gets
/// past the check.
/// </summary>
public sealed class AccessMatrixTests : IAsyncLifetime, IDisposable
{
    private const string Main = "team/main";
    private const string Hidden = "secret/ns";
    private static readonly string[] Principals = ["none", "reader", "other-writer", "writer", "admin"];

    private readonly TestTokens _tokens = new(
        ("reader", ["read:team/main"]),
        ("other-writer", ["write:other/*"]),
        ("writer", ["write:team/main"]),
        ("admin", ["admin"]),
        ("pr", ["write:team/pr/*", "read:team/main"]));

    private readonly CapturedLogs _logs = new(LogLevel.Information);
    private readonly HttpClient _http = new();
    private TestServer _server = null!;
    private byte[] _layer = null!;
    private LayerDescriptor _descriptor = null!;
    private string _manifestDigest = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(
            services => services.AddSingleton<ILoggerProvider>(_logs),
            [.. _tokens.ServerArgs, $"--Logging:LogLevel:{AuditLog.Category}=Information"]);
        _http.BaseAddress = new Uri($"http://127.0.0.1:{_server.HttpPort}");
        _layer = Layers.Random(1000, seed: 150);
        _descriptor = Layers.Descriptor(_layer);
        foreach (var ns in new[] { Main, Hidden })
        {
            await Layers.UploadAsync(Client("admin"), ns, _layer);
            await Client("admin").CommitAsync(new CommitRequest { Namespace = ns, Key = Layers.Key("seed"), Layer = _descriptor });
        }

        using var admin = Registry("admin");
        _manifestDigest = (await admin.PushImageAsync(Main, "latest", seed: 151)).Digest;
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose()
    {
        _http.Dispose();
        _tokens.Dispose();
    }

    [Fact]
    public async Task Every_rpc_refuses_whoever_lacks_its_scope_and_admits_whoever_has_it()
    {
        var mismatches = new List<string>();
        foreach (var principal in Principals)
        {
            foreach (var (rpc, level, call) in Rpcs(principal))
            {
                var code = StatusCode.OK;
                try
                {
                    await call();
                }
                catch (RpcException e)
                {
                    code = e.StatusCode;
                }

                var expected = Expected(principal, level);
                var ok = expected == StatusCode.OK ? code is not (StatusCode.Unauthenticated or StatusCode.PermissionDenied) : code == expected;
                if (!ok)
                {
                    mismatches.Add($"{rpc} as {principal}: {code}, expected {(expected == StatusCode.OK ? "past the check" : expected)}");
                }
            }
        }

        Assert.Empty(mismatches);
        await AssertSeedIntactAsync();
    }

    [Fact]
    public async Task Every_registry_endpoint_refuses_whoever_lacks_its_scope_and_admits_whoever_has_it()
    {
        var mismatches = new List<string>();
        foreach (var principal in Principals)
        {
            using var http = Registry(principal);
            foreach (var (endpoint, level, request) in Endpoints(principal))
            {
                using var response = await http.SendAsync(request());
                var expected = Expected(principal, level) switch
                {
                    StatusCode.Unauthenticated => HttpStatusCode.Unauthorized,
                    StatusCode.PermissionDenied => HttpStatusCode.Forbidden,
                    _ => HttpStatusCode.OK,
                };
                var status = response.StatusCode;
                var ok = expected == HttpStatusCode.OK
                    ? status is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    : status == expected && (status != HttpStatusCode.Unauthorized || Challenge(response).StartsWith($"Bearer realm=\"http://127.0.0.1:{_server.HttpPort}/auth/token\"", StringComparison.Ordinal));
                if (!ok)
                {
                    mismatches.Add($"{endpoint} as {principal}: {(int)status}, expected {(expected == HttpStatusCode.OK ? "past the check" : (int)expected)}");
                }
            }
        }

        Assert.Empty(mismatches);
        await AssertSeedIntactAsync();
        using var anonymous = await _http.GetAsync($"/v2/{Main}/manifests/latest");
        Assert.Equal($"Bearer realm=\"http://127.0.0.1:{_server.HttpPort}/auth/token\",service=\"cacheservice\",scope=\"repository:{Main}:pull\"", Challenge(anonymous));
    }

    [Fact]
    public async Task The_catalog_shows_each_token_only_the_repositories_it_may_read()
    {
        async Task<string> Catalog(string principal)
        {
            using var http = Registry(principal);
            return await http.GetStringAsync("/v2/_catalog");
        }

        Assert.Equal($"{{\"repositories\":[\"{Main}\"]}}", await Catalog("reader"));
        Assert.Equal("{\"repositories\":[]}", await Catalog("other-writer"));
        Assert.Contains(Hidden, await Catalog("admin"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_pull_request_token_reads_main_through_the_fallback_but_cannot_write_it()
    {
        var pr = Client("pr");
        var lookup = await pr.LookupAsync(new LookupRequest { Namespace = "team/pr/42", Key = Layers.Key("seed"), FallbackNamespaces = { Main } });
        Assert.True(lookup.Hit);
        Assert.Equal(Main, lookup.Namespace);

        // A fallback it may not read is skipped, as if empty: the entry there stays unseen.
        var hidden = await pr.LookupAsync(new LookupRequest { Namespace = "team/pr/42", Key = Layers.Key("seed"), FallbackNamespaces = { Hidden } });
        Assert.False(hidden.Hit);

        var denied = await Assert.ThrowsAsync<RpcException>(() => pr.CommitAsync(new CommitRequest { Namespace = Main, Key = Layers.Key("pr"), Layer = _descriptor }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Contains("write:team/main", denied.Status.Detail, StringComparison.Ordinal);

        await Layers.UploadAsync(pr, "team/pr/42", _layer);
        var own = await pr.CommitAsync(new CommitRequest { Namespace = "team/pr/42", Key = Layers.Key("pr"), Layer = _descriptor });
        Assert.True(own.Created);
        Assert.False((await Client("admin").LookupAsync(new LookupRequest { Namespace = Main, Key = Layers.Key("pr") })).Hit);
    }

    [Fact]
    public async Task Writes_and_deletes_are_audited_with_the_token_name_and_refusals_are_not()
    {
        await Client("writer").CommitAsync(new CommitRequest { Namespace = Main, Key = Layers.Key("audited"), Layer = _descriptor });
        await Client("writer").DeleteAsync(new DeleteRequest { Namespace = Main, Keys = { Layers.Key("audited") } });
        await Assert.ThrowsAsync<RpcException>(() => Client("reader").DeleteAsync(new DeleteRequest { Namespace = Main, All = true }).ResponseAsync);

        var audit = _logs.Entries.Where(e => e.Category == AuditLog.Category).Select(e => e.Message).ToList();
        Assert.Contains(audit, m => m.Contains("commit by writer from 127.0.0.1", StringComparison.Ordinal)
            && m.Contains($"namespace={Main} target={Layers.Key("audited")} layer={_descriptor.Digest}", StringComparison.Ordinal));
        Assert.Contains(audit, m => m.Contains("delete by writer", StringComparison.Ordinal) && m.Contains(Layers.Key("audited"), StringComparison.Ordinal));
        Assert.Contains(audit, m => m.Contains("registry PUT by admin", StringComparison.Ordinal) && m.Contains("target=latest", StringComparison.Ordinal));
        Assert.DoesNotContain(audit, m => m.Contains("by reader", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_status_page_and_its_data_need_credentials_and_show_only_readable_namespaces()
    {
        _server.Time.Advance(TimeSpan.FromSeconds(10)); // a sample, so namespaces show
        using var anonymous = await _http.GetAsync("/api/status");
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        Assert.Equal("Basic realm=\"cacheservice\"", Challenge(anonymous));
        using var page = await _http.GetAsync("/");
        Assert.Equal(HttpStatusCode.Unauthorized, page.StatusCode);
        using var metrics = await _http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
        using var health = await _http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        string status = "";
        for (var i = 0; i < 100 && !status.Contains(Main, StringComparison.Ordinal); i++)
        {
            using var reader = Registry("reader");
            status = await reader.GetStringAsync("/api/status");
            await Task.Delay(20);
        }

        Assert.Contains($"\"namespace\":\"{Main}\"", status, StringComparison.Ordinal);
        Assert.DoesNotContain(Hidden, status, StringComparison.Ordinal);
        using var admin = Registry("admin");
        Assert.Contains(Hidden, await admin.GetStringAsync("/api/status"), StringComparison.Ordinal);
    }

    private static StatusCode Expected(string principal, Core.Access.AccessLevel? level) => (principal, level) switch
    {
        ("none", _) => StatusCode.Unauthenticated,
        ("writer" or "admin", _) => StatusCode.OK,
        (_, null) => StatusCode.OK,
        ("reader", Core.Access.AccessLevel.Read) => StatusCode.OK,
        _ => StatusCode.PermissionDenied,
    };

    private static string Challenge(HttpResponseMessage response) => string.Join(", ", response.Headers.WwwAuthenticate.Select(h => h.ToString()));

    private LayerCache.LayerCacheClient Client(string principal) =>
        new(_server.Channel.Intercept(metadata =>
        {
            if (principal != "none")
            {
                metadata.Add("authorization", "Bearer " + _tokens[principal]);
            }

            return metadata;
        }));

    private HttpClient Registry(string principal)
    {
        var http = new HttpClient { BaseAddress = _http.BaseAddress };
        if (principal != "none")
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:" + _tokens[principal])));
        }

        return http;
    }

    // Each RPC with a request that would succeed, or fail for a reason other than access, for whoever may make it.
    private IEnumerable<(string Rpc, Core.Access.AccessLevel? Level, Func<Task> Call)> Rpcs(string principal)
    {
        var client = Client(principal);
        var read = Core.Access.AccessLevel.Read;
        var write = Core.Access.AccessLevel.Write;
        var step = new StepInput { Instruction = "RUN make" };
        var other = Layers.Key("not-stored"); // deletes nothing
        yield return ("ComputeKey", null, () => client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = Layers.DigestOf([1]), Platform = "linux/amd64", Step = step }).ResponseAsync);
        yield return ("Lookup", read, () => client.LookupAsync(new LookupRequest { Namespace = Main, Key = Layers.Key("seed") }).ResponseAsync);
        yield return ("ResolveChain", read, () => client.ResolveChainAsync(new ResolveChainRequest { Namespace = Main, BaseState = Layers.DigestOf([1]), Platform = "linux/amd64", Steps = { step } }).ResponseAsync);
        yield return ("Commit", write, () => client.CommitAsync(new CommitRequest { Namespace = Main, Key = Layers.Key("matrix " + principal), Layer = _descriptor }).ResponseAsync);
        yield return ("UploadLayer", write, () => Layers.UploadAsync(client, Main, Layers.Random(500, seed: 152)));
        yield return ("DownloadLayer", read, () => Layers.DownloadAsync(client, Main, _descriptor.Digest));
        yield return ("StatLayers", read, () => client.StatLayersAsync(new StatLayersRequest { Namespace = Main, Digests = { _descriptor.Digest } }).ResponseAsync);
        yield return ("GetStats", read, () => client.GetStatsAsync(new GetStatsRequest { Namespace = Main }).ResponseAsync);
        yield return ("Delete", write, () => client.DeleteAsync(new DeleteRequest { Namespace = Main, Keys = { other } }).ResponseAsync);
        yield return ("Verify", read, () => client.VerifyAsync(new VerifyRequest { Namespace = Main }).ResponseAsync);
        yield return ("PresignLayer download", read, () => client.PresignLayerAsync(new PresignLayerRequest { Namespace = Main, Digest = _descriptor.Digest, Direction = TransferDirection.Download }).ResponseAsync);
        yield return ("PresignLayer upload", write, () => client.PresignLayerAsync(new PresignLayerRequest { Namespace = Main, Digest = Layers.DigestOf([2]), Direction = TransferDirection.Upload }).ResponseAsync);
        yield return ("CompleteDirectUpload", write, () => client.CompleteDirectUploadAsync(new CompleteDirectUploadRequest { Namespace = Main, UploadId = "none", Digest = Layers.DigestOf([2]), Size = 1 }).ResponseAsync);
    }

    // Each registry endpoint, likewise.
    private IEnumerable<(string Endpoint, Core.Access.AccessLevel? Level, Func<HttpRequestMessage> Request)> Endpoints(string principal)
    {
        var read = Core.Access.AccessLevel.Read;
        var write = Core.Access.AccessLevel.Write;
        var blob = $"/v2/{Main}/blobs/{_descriptor.Digest}";
        var fresh = Layers.Random(300, seed: 153);
        var absent = Layers.DigestOf([3]); // deletes nothing
        HttpRequestMessage Make(HttpMethod method, string path, byte[]? body = null, string? type = null)
        {
            var request = new HttpRequestMessage(method, path);
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(type ?? "application/octet-stream");
            }

            return request;
        }

        yield return ("GET /v2/", null, () => Make(HttpMethod.Get, "/v2/"));
        yield return ("GET catalog", null, () => Make(HttpMethod.Get, "/v2/_catalog"));
        yield return ("HEAD blob", read, () => Make(HttpMethod.Head, blob));
        yield return ("GET blob", read, () => Make(HttpMethod.Get, blob));
        yield return ("GET manifest by tag", read, () => Make(HttpMethod.Get, $"/v2/{Main}/manifests/latest"));
        yield return ("HEAD manifest by digest", read, () => Make(HttpMethod.Head, $"/v2/{Main}/manifests/{_manifestDigest}"));
        yield return ("GET tags", read, () => Make(HttpMethod.Get, $"/v2/{Main}/tags/list"));
        yield return ("GET referrers", read, () => Make(HttpMethod.Get, $"/v2/{Main}/referrers/{_manifestDigest}"));
        yield return ("POST upload", write, () => Make(HttpMethod.Post, $"/v2/{Main}/blobs/uploads/"));
        yield return ("POST monolithic upload", write, () => Make(HttpMethod.Post, $"/v2/{Main}/blobs/uploads/?digest={Layers.DigestOf(fresh)}", fresh));
        yield return ("POST mount", write, () => Make(HttpMethod.Post, $"/v2/{Main}/blobs/uploads/?mount={_descriptor.Digest}&from={Hidden}"));
        yield return ("PATCH upload", write, () => Make(HttpMethod.Patch, $"/v2/{Main}/blobs/uploads/0123456789abcdef", fresh));
        yield return ("PUT upload", write, () => Make(HttpMethod.Put, $"/v2/{Main}/blobs/uploads/0123456789abcdef?digest={Layers.DigestOf(fresh)}", fresh));
        yield return ("GET upload status", read, () => Make(HttpMethod.Get, $"/v2/{Main}/blobs/uploads/0123456789abcdef"));
        yield return ("DELETE upload", write, () => Make(HttpMethod.Delete, $"/v2/{Main}/blobs/uploads/0123456789abcdef"));
        yield return ("PUT manifest", write, () => Make(HttpMethod.Put, $"/v2/{Main}/manifests/matrix-{principal}", [], OciImages.ManifestType));
        yield return ("DELETE manifest", write, () => Make(HttpMethod.Delete, $"/v2/{Main}/manifests/{absent}"));
        yield return ("DELETE blob", write, () => Make(HttpMethod.Delete, $"/v2/{Main}/blobs/{absent}"));
    }

    private async Task AssertSeedIntactAsync()
    {
        var admin = Client("admin");
        var seed = await admin.LookupAsync(new LookupRequest { Namespace = Main, Key = Layers.Key("seed") });
        Assert.True(seed.Hit);
        Assert.Equal(_layer, await Layers.DownloadAsync(admin, Main, _descriptor.Digest));
        using var registry = Registry("admin");
        using var manifest = await registry.GetAsync($"/v2/{Main}/manifests/latest");
        Assert.Equal(HttpStatusCode.OK, manifest.StatusCode);
        var refused = new[] { "none", "reader", "other-writer" };
        Assert.DoesNotContain(_logs.Entries, e => e.Category == AuditLog.Category && refused.Any(p => e.Message.Contains($" by {(p == "none" ? "anonymous" : p)} ", StringComparison.Ordinal)));
    }
}
