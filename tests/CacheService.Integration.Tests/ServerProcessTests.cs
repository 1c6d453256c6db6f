using System.Globalization;
using System.Net;
using System.Net.Sockets;
using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Net.Client;

namespace CacheService.Integration.Tests;

/// <summary>
/// The built server as a person starts it, from the repository root (scripts/server.sh, as
/// <c>make run</c> serves it): what it logs in an ordinary session, and what it says when it
/// cannot start.
/// </summary>
public sealed class ServerProcessTests : IDisposable
{
    private static readonly string ServerDll = Path.Combine(ServiceScripts.RepositoryRoot, "src", "CacheService.Server", "bin", "Release", "net10.0", "CacheService.Server.dll");

    private readonly string _state = Directory.CreateTempSubdirectory("cs-process-").FullName;

    public void Dispose()
    {
        ServiceScripts.Run("server.sh", "stop", _state);
        Directory.Delete(_state, recursive: true);
    }

    [Fact]
    public async Task A_session_of_a_hundred_requests_logs_no_line_at_Information()
    {
        var ports = ServiceScripts.Run("server.sh", "start", _state).Split(' ', StringSplitOptions.TrimEntries);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ports[1]}") };
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{ports[0]}");
        var client = new LayerCache.LayerCacheClient(channel);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/metrics")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"/v2/logs/app/blobs/{Layers.DigestOf([(byte)i])}")).StatusCode);
            var lookup = await client.LookupAsync(new LookupRequest { Namespace = "logs/main", Key = Layers.DigestOf([(byte)i, 1]) });
            Assert.False(lookup.Hit);
        }

        ServiceScripts.Run("server.sh", "stop", _state);
        var log = await File.ReadAllLinesAsync(Path.Combine(_state, "server.log"));
        // Start and stop say what they do (the host's lifetime, "CacheService listening"); nothing else at Information.
        var information = log.Where(l => l.StartsWith("info: ", StringComparison.Ordinal)).ToList();
        Assert.Contains(information, l => l.StartsWith("info: CacheService.Server[1]", StringComparison.Ordinal));
        Assert.All(information, l => Assert.True(
            l.StartsWith("info: Microsoft.Hosting.Lifetime[", StringComparison.Ordinal) || l.StartsWith("info: CacheService.Server[1]", StringComparison.Ordinal),
            $"a line at Information in an ordinary session: {l}\n{string.Join('\n', log)}"));
        Assert.True(information.Count < 10, string.Join('\n', log));
    }

    [Fact]
    public async Task Invalid_options_in_several_sections_are_all_reported_at_once_with_exit_code_1()
    {
        var (exit, output) = await StartAsync(
            "--CacheService:Server:GrpcPort=-5", "--CacheService:Eviction:LowWatermarkRatio=7", "--CacheService:Limits:MaxArgsPerStep=-1");
        Assert.Equal(1, exit);
        Assert.Contains("GrpcPort must be", output, StringComparison.Ordinal);
        Assert.Contains("LowWatermarkRatio must be", output, StringComparison.Ordinal);
        Assert.Contains("MaxArgsPerStep must not be negative", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // no stack trace
        Assert.Single(output.Split('\n'), l => l.Contains("GrpcPort must be", StringComparison.Ordinal)); // and said once
    }

    [Fact]
    public async Task Values_that_do_not_convert_are_reported_with_the_other_problems_of_their_sections_and_of_the_rest()
    {
        var (exit, output) = await StartAsync(
            "--CacheService:Server:GrpcPort=abc", "--CacheService:Server:HttpPort=-1", "--cacheservice:eviction:namespacebudgetbytes:team=lots",
            "--CacheService:Eviction:LowWatermarkRatio=7", "--CacheService:Storage:IndexEngine=mongo", "--CacheService:Limits:LookupTimeout=soon",
            "--CacheService:Limits:MaxArgsPerStep=-1");
        Assert.Equal(1, exit);
        Assert.Contains("CacheService:Server: GrpcPort must be a whole number, not 'abc'", output, StringComparison.Ordinal);
        Assert.Contains("CacheService:Server: HttpPort must be 0-65535", output, StringComparison.Ordinal); // same section as the word
        Assert.Contains("NamespaceBudgetBytes:team must be a whole number, not 'lots'", output, StringComparison.Ordinal);
        Assert.Contains("LowWatermarkRatio must be", output, StringComparison.Ordinal);
        Assert.Contains("CacheService:Storage: IndexEngine must be one of sqlite, redis, not 'mongo'", output, StringComparison.Ordinal);
        Assert.Contains("LookupTimeout must be a duration", output, StringComparison.Ordinal);
        Assert.Contains("MaxArgsPerStep must not be negative", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_taken_port_is_named_with_how_to_choose_another()
    {
        var port = ServiceScripts.FreePort();
        using var holder = new TcpListener(IPAddress.Loopback, port);
        holder.Start();
        var (exit, output) = await StartAsync($"--CacheService:Server:GrpcPort={port}", "--CacheService:Server:HttpPort=0");
        Assert.Equal(1, exit);
        Assert.Contains($"gRPC port {port.ToString(CultureInfo.InvariantCulture)} on 127.0.0.1 is in use", output, StringComparison.Ordinal);
        Assert.Contains("PORT=", output, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
        Assert.True(output.Trim().Split('\n').Length <= 2, output);
    }

    // Runs the server in the foreground until it exits; a server that starts instead fails the test (the timeout).
    private async Task<(int ExitCode, string Output)> StartAsync(params string[] args)
    {
        var (exit, output, error) = await Tools.RunAsync("dotnet", "dotnet-sdk-10.0", null,
            [ServerDll, $"--CacheService:Storage:DataDirectory={Path.Combine(_state, "data")}", .. args]);
        return (exit, output + error);
    }
}
