using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using CacheService.Core;
using CacheService.Testing;
using Grpc.Core;

namespace CacheService.Client.Tests;

/// <summary>
/// TLS on both ports from PEM files the test makes with openssl, the SDK trusting a CA file,
/// mutual TLS where a client certificate stands for the token its common name names, and a
/// renewed certificate served without a restart.
/// </summary>
public sealed class TlsTests : IAsyncLifetime, IDisposable
{
    private readonly TestTokens _tokens = new(("writer", ["write:team/main"]), ("reader", ["read:team/main"]));
    private TestCertificates _certificates = null!;

    public async Task InitializeAsync() => _certificates = await TestCertificates.CreateAsync();

    public Task DisposeAsync()
    {
        _certificates.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _tokens.Dispose();

    private string[] TlsArgs(params string[] extra) =>
    [
        .. _tokens.ServerArgs,
        $"--CacheService:Tls:CertificateFile={_certificates.Server.Certificate}",
        $"--CacheService:Tls:KeyFile={_certificates.Server.Key}",
        .. extra,
    ];

    [Fact]
    public async Task Both_ports_speak_tls_and_a_client_that_trusts_the_ca_file_gets_in_while_others_do_not()
    {
        await using var server = await TestServer.StartAsync(TlsArgs());
        Assert.StartsWith("https://", server.GrpcAddress, StringComparison.Ordinal);
        using var trusting = new CacheServiceClient(new CacheServiceClientOptions { Address = new Uri(server.GrpcAddress), CaFile = _certificates.CaFile, Token = _tokens["reader"], MaxRetries = 0 });
        Assert.False((await trusting.LookupAsync("team/main", Digest.Of("k"u8))).Hit);

        using var untrusting = new CacheServiceClient(new CacheServiceClientOptions { Address = new Uri(server.GrpcAddress), Token = _tokens["reader"], MaxRetries = 0 });
        var refused = await Assert.ThrowsAsync<RpcException>(() => untrusting.LookupAsync("team/main", Digest.Of("k"u8)));
        Assert.True(refused.StatusCode is StatusCode.Unavailable or StatusCode.Internal, refused.Status.ToString());
        Assert.Contains("SSL connection could not be established", refused.Status.Detail, StringComparison.Ordinal);

        using var other = await TestCertificates.CreateAsync("another-ca");
        using var wrongCa = new CacheServiceClient(new CacheServiceClientOptions { Address = new Uri(server.GrpcAddress), CaFile = other.CaFile, Token = _tokens["reader"], MaxRetries = 0 });
        Assert.Contains("SSL connection could not be established", (await Assert.ThrowsAsync<RpcException>(() => wrongCa.LookupAsync("team/main", Digest.Of("k"u8)))).Status.Detail, StringComparison.Ordinal);

        // The HTTP port too: the registry and health answer over TLS, and not in cleartext.
        Assert.Equal("CN=127.0.0.1", (await ServedCertificateAsync(server.HttpPort)).Subject);
        using var https = new HttpClient(TrustingHandler());
        Assert.Equal("Healthy", await https.GetStringAsync($"https://127.0.0.1:{server.HttpPort}/healthz"));
        using var cleartext = new HttpClient();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => cleartext.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/healthz"));
    }

    [Fact]
    public async Task A_client_certificate_from_the_client_ca_stands_for_the_token_its_common_name_names()
    {
        await using var server = await TestServer.StartAsync(TlsArgs($"--CacheService:Tls:ClientCaFile={_certificates.CaFile}"));
        CacheServiceClient Client((string Certificate, string Key) pair) => new(new CacheServiceClientOptions
        {
            Address = new Uri(server.GrpcAddress),
            CaFile = _certificates.CaFile,
            ClientCertificateFile = pair.Certificate,
            ClientKeyFile = pair.Key,
            MaxRetries = 0,
            Token = null,
        });

        using var writer = Client(await _certificates.ClientAsync("writer"));
        Assert.Equal(0, await writer.DeleteAsync("team/main", [Digest.Of("k"u8)]));
        using var reader = Client(await _certificates.ClientAsync("reader"));
        Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() => reader.DeleteAsync("team/main", [Digest.Of("k"u8)]))).StatusCode);
        using var nobody = Client(await _certificates.ClientAsync("nobody"));
        Assert.Equal(StatusCode.Unauthenticated, (await Assert.ThrowsAsync<RpcException>(() => nobody.LookupAsync("team/main", Digest.Of("k"u8)))).StatusCode);

        // A certificate from another CA fails the handshake, whatever its name.
        using var other = await TestCertificates.CreateAsync("another-ca");
        using var forged = Client(await other.ClientAsync("writer"));
        // With TLS 1.3 the server checks the client's certificate after the client has finished its
        // side of the handshake: the refusal reaches the client as a failed connection (UNAVAILABLE)
        // or as a stream reset on it (INTERNAL), by timing. Either way the call is refused.
        var refused = await Assert.ThrowsAsync<RpcException>(() => forged.DeleteAsync("team/main", [Digest.Of("k"u8)]));
        Assert.Contains(refused.StatusCode, (StatusCode[])[StatusCode.Unavailable, StatusCode.Internal]);
    }

    [Fact]
    public async Task The_cli_reaches_an_https_server_with_a_ca_file_and_a_client_certificate()
    {
        await using var server = await TestServer.StartAsync(TlsArgs($"--CacheService:Tls:ClientCaFile={_certificates.CaFile}"));
        async Task<(int Exit, string Error)> Run(params string[] args)
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            var console = new Cli.CliConsole(output, error, IsTerminal: false, _ => null, server.Time);
            return (await Cli.LayercacheCli.RunAsync(["stats", "--server", server.GrpcAddress, "--namespace", "team/main", .. args], console, CancellationToken.None), error.ToString());
        }

        Assert.Equal(0, (await Run("--ca-file", _certificates.CaFile, "--token", _tokens["reader"])).Exit);
        var writer = await _certificates.ClientAsync("writer");
        Assert.Equal(0, (await Run("--ca-file", _certificates.CaFile, "--client-cert", writer.Certificate, "--client-key", writer.Key)).Exit);
        Assert.Equal(1, (await Run("--token", _tokens["reader"])).Exit); // the server's CA is in no system store
        var (exit, error) = await Run("--ca-file", "/nonexistent.pem");
        Assert.Equal(2, exit);
        Assert.Contains("--ca-file: /nonexistent.pem does not exist", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Required_client_certificates_turn_away_a_client_without_one_even_with_a_token()
    {
        await using var server = await TestServer.StartAsync(TlsArgs($"--CacheService:Tls:ClientCaFile={_certificates.CaFile}", "--CacheService:Tls:RequireClientCertificate=true"));
        using var tokenOnly = new CacheServiceClient(new CacheServiceClientOptions { Address = new Uri(server.GrpcAddress), CaFile = _certificates.CaFile, Token = _tokens["writer"], MaxRetries = 0 });
        // As with a forged certificate, TLS 1.3 lets the refusal arrive as a failed connection or a reset stream.
        var refused = await Assert.ThrowsAsync<RpcException>(() => tokenOnly.LookupAsync("team/main", Digest.Of("k"u8)));
        Assert.Contains(refused.StatusCode, (StatusCode[])[StatusCode.Unavailable, StatusCode.Internal]);
    }

    [Fact]
    public async Task A_renewed_certificate_is_served_to_new_connections_without_a_restart()
    {
        await using var server = await TestServer.StartAsync(TlsArgs("--CacheService:Tls:ReloadInterval=00:01:00"));
        var before = await ServedCertificateAsync(server.HttpPort);
        await _certificates.RenewServerAsync();
        Assert.Equal(before.SerialNumber, (await ServedCertificateAsync(server.HttpPort)).SerialNumber); // not read again yet

        server.Time.Advance(TimeSpan.FromMinutes(1));
        var after = await ServedCertificateAsync(server.HttpPort);
        Assert.NotEqual(before.SerialNumber, after.SerialNumber);
        Assert.Equal(await File.ReadAllTextAsync(_certificates.Server.Certificate), after.ExportCertificatePem() + "\n", ignoreLineEndingDifferences: true);
    }

    [Fact]
    public async Task Bad_tls_files_stop_the_server_at_start_naming_them()
    {
        var missing = await Assert.ThrowsAsync<CacheService.Server.Hosting.StartupException>(() => TestServer.StartAsync(
            $"--CacheService:Tls:CertificateFile={_certificates.Server.Certificate}", $"--CacheService:Tls:KeyFile={_certificates.CaFile}"));
        Assert.Contains("cannot load the TLS files", missing.Message, StringComparison.Ordinal);
        var half = await Assert.ThrowsAsync<CacheService.Server.Hosting.StartupException>(() => TestServer.StartAsync(
            $"--CacheService:Tls:CertificateFile={_certificates.Server.Certificate}"));
        Assert.Contains("CertificateFile and KeyFile go together", half.Message, StringComparison.Ordinal);
    }

    private HttpClientHandler TrustingHandler()
    {
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(_certificates.CaFile);
        return new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, certificate, _, _) =>
            {
                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return certificate is not null && chain.Build(certificate);
            },
        };
    }

    // The certificate the server presents to a new connection on port.
    private static async Task<X509Certificate2> ServedCertificateAsync(int port)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", port);
        X509Certificate2? served = null;
        await using var tls = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false, (_, certificate, _, errors) =>
        {
            served = certificate is null ? null : new X509Certificate2(certificate);
            return errors is SslPolicyErrors.None or SslPolicyErrors.RemoteCertificateChainErrors; // the test CA is in no system store
        });
        await tls.AuthenticateAsClientAsync("127.0.0.1");
        return served ?? throw new InvalidOperationException("no certificate was presented");
    }
}
