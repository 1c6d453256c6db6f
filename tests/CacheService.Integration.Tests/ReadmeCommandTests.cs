using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using CacheService.Testing;

namespace CacheService.Integration.Tests;

/// <summary>
/// Every command in the README that starts the server, run by bash as written, with this
/// machine's Redis and Ceph RGW put in place of the README's addresses and credentials: each
/// starts a server that answers ready. A setting the README forgets (the entry key the Redis index
/// needs, say) fails here before a reader meets it.
/// </summary>
[Collection(SharedRgw.Name)]
public sealed partial class ReadmeCommandTests(RgwServer rgw) : IDisposable
{
    private readonly RedisServers _redis = RedisServers.StartSingle();
    private readonly TestTokens _tokens = new(("ops", ["admin"]));

    public void Dispose()
    {
        _redis.Dispose();
        _tokens.Dispose();
    }

    [Fact]
    public async Task Every_server_command_in_the_readme_starts_a_server_that_is_ready()
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(ServiceScripts.RepositoryRoot, "README.md"));
        var commands = ShellBlock().Matches(readme).SelectMany(b => b.Groups[1].Value.Replace("\\\n", " ", StringComparison.Ordinal).Split('\n'))
            .Where(l => l.StartsWith("dotnet ", StringComparison.Ordinal) && l.Contains("CacheService.Server.dll", StringComparison.Ordinal)).ToList();
        Assert.True(commands.Count >= 4, $"only {commands.Count} server commands found:\n{string.Join('\n', commands)}");
        foreach (var command in commands)
        {
            await AssertStartsAsync(command);
        }
    }

    // The README's command with this machine's services in place, on free ports and a data directory of its own.
    private string Localize(string command)
    {
        var s3 = rgw.Options();
        command = Comment().Replace(command, "");
        command = RedisAddress().Replace(command, _redis.Configuration);
        command = S3Endpoint().Replace(command, s3.Endpoint);
        command = AccessKey().Replace(command, "AccessKey=" + s3.AccessKey);
        command = SecretKey().Replace(command, "SecretKey=" + s3.SecretKey);
        command = command.Replace("dotnet src/", $"dotnet {ServiceScripts.RepositoryRoot}/src/", StringComparison.Ordinal);
        var data = Path.Combine(Path.GetDirectoryName(_tokens.Path)!, "data-" + Guid.NewGuid().ToString("N"));
        return $"exec {command} --CacheService:S3:Bucket={s3.Bucket} --CacheService:S3:Prefix={s3.Prefix} " +
            $"--CacheService:Server:GrpcPort=0 --CacheService:Server:HttpPort=0 --CacheService:Storage:DataDirectory={data}";
    }

    private async Task AssertStartsAsync(string command)
    {
        var info = new ProcessStartInfo("bash", ["-c", Localize(command)])
        {
            WorkingDirectory = Path.GetDirectoryName(_tokens.Path)!, // where the README's tokens.json is
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var server = Process.Start(info)!;
        var error = server.StandardError.ReadToEndAsync();
        var output = new List<string>();
        try
        {
            Match listening = Match.Empty;
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (!listening.Success && await server.StandardOutput.ReadLineAsync(deadline.Token) is { } line)
            {
                output.Add(line);
                listening = Listening().Match(line);
            }

            if (!listening.Success)
            {
                Assert.Fail($"the README's\n  {command}\ndid not start a server:\n{string.Join('\n', output)}\n{await error}");
            }

            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) }; // readiness answers within 2 s, or 503
            var ready = await http.GetAsync($"http://127.0.0.1:{listening.Groups[1].Value}/readyz");
            Assert.True(ready.StatusCode == HttpStatusCode.OK, $"the README's\n  {command}\nstarted a server that is not ready: {await ready.Content.ReadAsStringAsync()}");
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
        }
    }

    [GeneratedRegex(@"```sh\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex ShellBlock();

    [GeneratedRegex(@"\s+# .*$")]
    private static partial Regex Comment();

    [GeneratedRegex(@"127\.0\.0\.1:1?6379")]
    private static partial Regex RedisAddress();

    [GeneratedRegex(@"http://127\.0\.0\.1:1?7480")]
    private static partial Regex S3Endpoint();

    [GeneratedRegex(@"AccessKey=\S+")]
    private static partial Regex AccessKey();

    [GeneratedRegex(@"SecretKey=\S+")]
    private static partial Regex SecretKey();

    [GeneratedRegex(@"CacheService listening: grpc=\d+ http=(\d+)")]
    private static partial Regex Listening();
}
