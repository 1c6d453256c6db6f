using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using CacheService.Api.V1;
using CacheService.Core.Blobs;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

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
        "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={_redis.Configuration}", RedisServers.EntryKeyArg);

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

    [Fact]
    public async Task Under_load_redis_killed_restarted_and_flushed_gives_misses_in_time_never_a_wrong_hit_and_the_server_writes_and_collects_again()
    {
        await using var server = await StartServerAsync();
        var layers = new Dictionary<string, LayerDescriptor>();
        for (var i = 0; i < 20; i++)
        {
            layers[$"k{i}"] = await Layers.UploadAndCommitAsync(server.Client, "chaos", $"k{i}", Layers.Random(1000, 100 + i));
        }

        using var stop = new CancellationTokenSource();
        var wrong = 0;
        var hits = 0;
        var degraded = 0;
        var slowest = 0L;
        var errors = new ConcurrentQueue<string>();
        var load = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            while (!stop.IsCancellationRequested)
            {
                var name = $"k{random.Next(20)}";
                var clock = Stopwatch.StartNew();
                try
                {
                    var answer = await server.Client.LookupAsync(new LookupRequest { Namespace = "chaos", Key = Layers.Key(name) }, deadline: DateTime.UtcNow.AddSeconds(5));
                    Interlocked.Add(ref wrong, answer.Hit && !answer.Layer.Equals(layers[name]) ? 1 : 0);
                    Interlocked.Add(ref hits, answer.Hit ? 1 : 0);
                    Interlocked.Add(ref degraded, answer.Degraded ? 1 : 0);
                }
                catch (RpcException e)
                {
                    errors.Enqueue(e.Status.ToString());
                }

                var elapsed = clock.ElapsedMilliseconds;
                for (var seen = Interlocked.Read(ref slowest); elapsed > seen; seen = Interlocked.Read(ref slowest))
                {
                    Interlocked.CompareExchange(ref slowest, elapsed, seen);
                }
            }
        })).ToList();

        await Task.Delay(500);
        _redis.Kill(); // a crash: no shutdown, the append-only file is all that is left
        await Task.Delay(1000);
        _redis.Restart();
        await Task.Delay(1000);
        Cli("FLUSHALL"); // data lost under a running server
        await Task.Delay(1000);
        await stop.CancelAsync();
        await Task.WhenAll(load);

        Assert.Empty(errors);
        Assert.Equal(0, wrong);
        Assert.True(hits > 0 && degraded > 0, $"{hits} hits and {degraded} degraded misses: the load did not span the crash");
        Assert.True(slowest < 2000, $"the slowest lookup took {slowest} ms (lookup timeout: 500 ms)");

        var lost = await server.Client.LookupAsync(new LookupRequest { Namespace = "chaos", Key = Layers.Key("k0") });
        Assert.False(lost.Hit); // flushed: a clean miss, not the old answer
        await Layers.UploadAndCommitAsync(server.Client, "chaos", "k0", Layers.Random(1000, 100)); // the server writes again
        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "chaos", Key = Layers.Key("k0") })).Hit);

        // Collection resumes: the namespace is known again, so an entry that goes frees its blob.
        await server.Client.DeleteAsync(new DeleteRequest { Namespace = "chaos", Keys = { Layers.Key("k0") } });
        server.Time.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(1, await server.Services.GetRequiredService<BlobCollector>().CollectOnceAsync(TimeSpan.FromMinutes(10), CancellationToken.None));
        Assert.False(File.Exists(server.BlobPath("chaos", layers["k0"].Digest)));
    }

    private long HashGetAllCalls() =>
        HgetallCalls().Match(Cli("INFO", "commandstats")) is { Success: true } match ? long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : 0;

    [GeneratedRegex(@"cmdstat_hgetall:calls=(\d+)")]
    private static partial Regex HgetallCalls();
}
