using System.Diagnostics;
using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Integration.Tests;

/// <summary>The whole server on a real Redis, selected by configuration alone, through outages.</summary>
public sealed class RedisServerTests : IDisposable
{
    private readonly RedisServers _redis = RedisServers.StartSingle();

    public void Dispose() => _redis.Dispose();

    private Task<TestServer> StartServerAsync(params string[] args) => TestServer.StartAsync(
    [
        "--CacheService:Storage:IndexEngine=redis",
        $"--CacheService:Redis:Configuration={_redis.Configuration}", RedisServers.EntryKeyArg,
        .. args,
    ]);

    [Fact]
    public async Task An_entry_written_straight_into_redis_without_the_key_is_a_miss_is_removed_and_is_counted()
    {
        await using var server = await StartServerAsync();
        var real = await Layers.UploadAndCommitAsync(server.Client, "redis/forged", "bait", Layers.Random(1000, seed: 180));

        // The engine itself, beneath the signing: what anyone with write access to Redis can do.
        var engine = server.Services.GetRequiredService<CacheService.Index.Redis.RedisLayerIndex>();
        var planted = new CacheService.Core.LayerDescriptor(
            CacheService.Core.Digest.Parse(real.Digest, "digest"), CacheService.Core.Digest.Parse(real.DiffId, "diff_id"), real.Size, real.MediaType);
        await engine.CommitAsync("redis/forged", CacheService.Core.Index.NewEntry.ForLayer(CacheService.Core.Digest.Parse(Layers.Key("planted"), "key"), planted), new(long.MaxValue, long.MaxValue), CancellationToken.None);

        Assert.False((await server.Client.LookupAsync(new LookupRequest { Namespace = "redis/forged", Key = Layers.Key("planted") })).Hit);
        Assert.Null(await engine.LookupAsync("redis/forged", CacheService.Core.Digest.Parse(Layers.Key("planted"), "key"), CancellationToken.None));
        Assert.Equal(1, await server.MetricAsync("cacheservice_forged_entries_total{namespace=\"redis/forged\"}"));
        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "redis/forged", Key = Layers.Key("bait") })).Hit);

        // A second replica with the same key reads the first one's entries.
        await using var replica = await StartServerAsync();
        Assert.True((await replica.Client.LookupAsync(new LookupRequest { Namespace = "redis/forged", Key = Layers.Key("bait") })).Hit);
    }

    [Fact]
    public async Task The_round_trip_works_on_redis_and_verify_finds_it_consistent()
    {
        await using var server = await StartServerAsync("--CacheService:Eviction:NamespaceBudgetBytes:redis=10000000");
        var client = server.Client;
        for (var i = 0; i < 4; i++)
        {
            await Layers.UploadAndCommitAsync(client, "redis", $"k{i}", Layers.Random(3_000_000, i));
        }

        var first = await client.LookupAsync(new LookupRequest { Namespace = "redis", Key = Layers.Key("k0") });
        Assert.False(first.Hit); // evicted by the fourth commit: 12 MB over a 10 MB budget
        var last = await client.LookupAsync(new LookupRequest { Namespace = "redis", Key = Layers.Key("k3") });
        Assert.True(last.Hit);
        Assert.Equal(3_000_000, (await Layers.DownloadAsync(client, "redis", last.Layer.Digest)).Length);

        var stats = await client.GetStatsAsync(new GetStatsRequest { Namespace = "redis" });
        Assert.Equal((3L, 9_000_000L, 1L, 2L, 1L), (stats.Entries, stats.StoredBytes, stats.Evictions, stats.Lookups, stats.Hits));
        var verify = await client.VerifyAsync(new VerifyRequest { Namespace = "redis" });
        Assert.True(verify.Consistent, string.Join("; ", verify.Problems));
    }

    [Fact]
    public async Task Readiness_follows_redis_while_liveness_stays()
    {
        await using var server = await StartServerAsync();
        Assert.True(await server.WaitForReadinessAsync(true));
        _redis.Stop();
        Assert.True(await server.WaitForReadinessAsync(false), "a stopped Redis must make the server unready");
        using var http = new HttpClient();
        Assert.True((await http.GetAsync($"http://127.0.0.1:{server.HttpPort}/healthz")).IsSuccessStatusCode);
        _redis.Restart();
        Assert.True(await server.WaitForReadinessAsync(true), "the server must be ready again once Redis is back");
    }

    [Fact]
    public async Task With_redis_stopped_lookups_answer_a_degraded_miss_quickly_commits_are_unavailable_and_all_recovers_without_a_restart()
    {
        await using var server = await StartServerAsync();
        var client = server.Client;
        var layer = await Layers.UploadAndCommitAsync(client, "outage", "kept", Layers.Random(10_000, 1));
        var spare = Layers.Random(10_000, 2);
        await Layers.UploadAsync(client, "outage", spare);

        _redis.Stop();

        var clock = Stopwatch.StartNew();
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var lookup = await client.LookupAsync(new LookupRequest { Namespace = "outage", Key = Layers.Key("kept") }, deadline: deadline);
        Assert.False(lookup.Hit);
        Assert.True(lookup.Degraded);
        var chain = await client.ResolveChainAsync(new ResolveChainRequest
        {
            Namespace = "outage",
            BaseState = Layers.DigestOf([1]),
            Platform = "linux/amd64",
            Steps = { new StepInput { Instruction = "RUN x" } },
        }, deadline: deadline);
        Assert.True(chain.Degraded);
        var commit = await Assert.ThrowsAsync<RpcException>(async () => await client.CommitAsync(
            new CommitRequest { Namespace = "outage", Key = Layers.Key("new"), Layer = Layers.Descriptor(spare) }, deadline: deadline));
        Assert.Equal(StatusCode.Unavailable, commit.StatusCode);
        clock.Stop();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"three calls against a dead Redis took {clock.Elapsed}");

        // Redis comes back with its append-only file: the entry survived, and the same server
        // process reconnects by itself.
        _redis.Restart();
        LookupResponse? after = null;
        for (var attempt = 0; attempt < 100 && after?.Hit != true; attempt++)
        {
            after = await client.LookupAsync(new LookupRequest { Namespace = "outage", Key = Layers.Key("kept") });
            if (!after.Hit)
            {
                await Task.Delay(100);
            }
        }

        Assert.True(after!.Hit, "the server did not recover after Redis came back");
        Assert.Equal(layer, after.Layer);
        Assert.True((await client.CommitAsync(new CommitRequest { Namespace = "outage", Key = Layers.Key("new"), Layer = Layers.Descriptor(spare) })).Created);
    }

    [Fact]
    public async Task A_hung_redis_makes_lookups_answer_a_degraded_miss_within_the_lookup_timeout()
    {
        // Redis's own command timeout is set far above the lookup timeout, so only the lookup
        // timeout can explain a quick answer.
        await using var server = await StartServerAsync("--CacheService:Limits:LookupTimeout=00:00:00.2", "--CacheService:Redis:CommandTimeout=00:00:05");
        var layer = await Layers.UploadAndCommitAsync(server.Client, "hung", "k", Layers.Random(1000, 1));

        _redis.Freeze(); // connections stay open, nothing answers: only a timeout can save the build
        try
        {
            var clock = Stopwatch.StartNew();
            var lookup = await server.Client.LookupAsync(
                new LookupRequest { Namespace = "hung", Key = Layers.Key("k") }, deadline: DateTime.UtcNow.AddSeconds(10));
            clock.Stop();
            Assert.False(lookup.Hit);
            Assert.True(lookup.Degraded);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"a lookup against a hung Redis took {clock.Elapsed}");
        }
        finally
        {
            _redis.Thaw();
        }

        var after = await server.Client.LookupAsync(new LookupRequest { Namespace = "hung", Key = Layers.Key("k") });
        Assert.True(after.Hit);
        Assert.Equal(layer, after.Layer);
    }
}
