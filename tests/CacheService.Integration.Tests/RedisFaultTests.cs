using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;

namespace CacheService.Integration.Tests;

/// <summary>
/// A real redis-server in states that are not outages by connection: out of memory, busy with a
/// long script, data lost under a running server. Builds must see a miss or UNAVAILABLE, never
/// INTERNAL; requests for digests nobody has must not cost a scan.
/// </summary>
public sealed partial class RedisFaultTests : IDisposable
{
    private readonly RedisServers _redis = RedisServers.StartSingle();

    public void Dispose() => _redis.Dispose();

    private Task<TestServer> StartServerAsync() => TestServer.StartAsync(
        "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={_redis.Configuration}");

    private string Cli(params string[] args)
    {
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("-p");
        start.ArgumentList.Add(_redis.Ports[0].ToString(CultureInfo.InvariantCulture));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return output;
    }

    [Fact]
    public async Task Out_of_memory_makes_lookups_a_degraded_miss_and_commits_unavailable_not_internal()
    {
        await using var server = await StartServerAsync();
        var data = Layers.Random(1000, 1);
        await Layers.UploadAndCommitAsync(server.Client, "oom", "k", data);
        var other = Layers.Random(1000, 2);
        await Layers.UploadAsync(server.Client, "oom", other);

        Cli("CONFIG", "SET", "maxmemory", "1"); // every write now answers OOM (noeviction)
        try
        {
            var lookup = await server.Client.LookupAsync(new LookupRequest { Namespace = "oom", Key = Layers.Key("k") });
            Assert.True(lookup.Degraded);
            var e = await Assert.ThrowsAsync<RpcException>(async () =>
                await server.Client.CommitAsync(new CommitRequest { Namespace = "oom", Key = Layers.Key("k2"), Layer = Layers.Descriptor(other) }));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
        }
        finally
        {
            Cli("CONFIG", "SET", "maxmemory", "0");
        }

        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "oom", Key = Layers.Key("k") })).Hit);
    }

    [Fact]
    public async Task A_redis_busy_with_a_long_script_makes_lookups_a_degraded_miss()
    {
        await using var server = await StartServerAsync();
        await Layers.UploadAndCommitAsync(server.Client, "busy", "k", Layers.Random(1000, 3));
        Cli("CONFIG", "SET", "busy-reply-threshold", "50");
        using var spinner = Process.Start("redis-cli", ["-p", _redis.Ports[0].ToString(CultureInfo.InvariantCulture), "EVAL", "while true do end", "0"]);
        try
        {
            for (var i = 0; i < 100 && !Cli("PING").Contains("BUSY", StringComparison.Ordinal); i++)
            {
                await Task.Delay(50); // until the script runs past the threshold and Redis answers BUSY
            }

            var lookup = await server.Client.LookupAsync(new LookupRequest { Namespace = "busy", Key = Layers.Key("k") }, deadline: DateTime.UtcNow.AddSeconds(5));
            Assert.False(lookup.Hit);
            Assert.True(lookup.Degraded);
        }
        finally
        {
            Cli("SCRIPT", "KILL");
            spinner.WaitForExit();
        }

        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "busy", Key = Layers.Key("k") })).Hit);
    }

    [Fact]
    public async Task Downloading_a_digest_nobody_references_costs_no_scan_of_the_namespace()
    {
        await using var server = await StartServerAsync();
        await Layers.UploadAndCommitAsync(server.Client, "scan", "k", Layers.Random(1000, 4));
        var before = HashGetAllCalls();
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(server.Client, "scan", Layers.DigestOf(Layers.Random(10, 5))));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Equal(before, HashGetAllCalls()); // it was 4,096 HGETALLs, one per entry bucket
    }

    [Fact]
    public async Task A_namespace_registry_lost_under_a_running_server_is_rebuilt_by_the_next_commit()
    {
        await using var server = await StartServerAsync();
        await Layers.UploadAndCommitAsync(server.Client, "lost", "k1", Layers.Random(1000, 6));
        Cli("DEL", "cs:namespaces"); // as a flush or a failover without the key would
        await Layers.UploadAndCommitAsync(server.Client, "lost", "k2", Layers.Random(1000, 7));
        Assert.Contains("lost", Cli("SMEMBERS", "cs:namespaces").Split('\n'));
    }

    private long HashGetAllCalls() =>
        HgetallCalls().Match(Cli("INFO", "commandstats")) is { Success: true } match ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"cmdstat_hgetall:calls=(\d+)")]
    private static partial Regex HgetallCalls();
}
