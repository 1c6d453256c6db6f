using CacheService.Api.V1;
using CacheService.Core.Blobs;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Server.Tests;

/// <summary>Budgets, LRU by use, deferred blob deletion, and durability across a restart.</summary>
public sealed class EvictionAndRestartTests
{
    private const string Ns = "budget";
    private const int ThreeMB = 3_000_000;

    [Fact]
    public async Task A_fourth_layer_over_a_ten_megabyte_budget_evicts_the_least_recently_used_and_its_blob_goes_after_the_grace_period()
    {
        await using var server = await TestServer.StartAsync($"--CacheService:Eviction:NamespaceBudgetBytes:{Ns}=10000000");
        var client = server.Client;
        var one = await Layers.UploadAndCommitAsync(client, Ns, "one", Layers.Random(ThreeMB, 1));
        var two = await Layers.UploadAndCommitAsync(client, Ns, "two", Layers.Random(ThreeMB, 2));
        await Layers.UploadAndCommitAsync(client, Ns, "three", Layers.Random(ThreeMB, 3));
        Assert.True((await client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("one") })).Hit); // oldest, but used

        await Layers.UploadAsync(client, Ns, Layers.Random(ThreeMB, 4));
        var fourth = await client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key("four"), Layer = Layers.Descriptor(Layers.Random(ThreeMB, 4)) });

        Assert.Equal(1, fourth.EvictedEntries);
        Assert.False((await client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("two") })).Hit);
        Assert.True((await client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("one") })).Hit);
        var stats = await client.GetStatsAsync(new GetStatsRequest { Namespace = Ns });
        Assert.Equal((3L, 9_000_000L, 1L), (stats.Entries, stats.StoredBytes, stats.Evictions));

        // Within the grace period the evicted blob stays, so a download already under way finishes.
        var collector = server.Services.GetRequiredService<BlobCollector>();
        server.Time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal(0, await collector.CollectOnceAsync(TimeSpan.FromMinutes(10), CancellationToken.None));
        Assert.Equal(ThreeMB, (await Layers.DownloadAsync(client, Ns, two.Digest)).Length);

        server.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await collector.CollectOnceAsync(TimeSpan.FromMinutes(10), CancellationToken.None));
        Assert.False(File.Exists(server.BlobPath(Ns, two.Digest)));
        Assert.True(File.Exists(server.BlobPath(Ns, one.Digest)));
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.DownloadAsync(client, Ns, two.Digest));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
    }

    [Fact]
    public async Task A_layer_larger_than_the_whole_budget_is_refused_as_resource_exhausted()
    {
        await using var server = await TestServer.StartAsync($"--CacheService:Eviction:NamespaceBudgetBytes:{Ns}=1000");
        var data = Layers.Random(2000, 1);
        var upload = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(server.Client, Ns, data)); // refused before a byte is stored
        Assert.Equal(StatusCode.ResourceExhausted, upload.StatusCode);
        var commit = await Assert.ThrowsAsync<RpcException>(async () =>
            await server.Client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key("big"), Layer = Layers.Descriptor(data) }));
        Assert.Equal(StatusCode.FailedPrecondition, commit.StatusCode);
    }

    [Fact]
    public async Task Stopping_and_restarting_the_server_keeps_every_entry_and_blob()
    {
        await using var server = await TestServer.StartAsync();
        var data = Layers.Random(1_500_000, 5);
        var layer = await Layers.UploadAndCommitAsync(server.Client, "durable/ns", "kept", data);

        await server.RestartAsync();

        var lookup = await server.Client.LookupAsync(new LookupRequest { Namespace = "durable/ns", Key = Layers.Key("kept") });
        Assert.True(lookup.Hit);
        Assert.Equal(layer, lookup.Layer);
        Assert.Equal(data, await Layers.DownloadAsync(server.Client, "durable/ns", layer.Digest));
        Assert.Equal(1, (await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "durable/ns" })).Entries);
    }

    [Fact]
    public async Task Keys_past_the_entry_limit_evict_the_least_recently_used_even_when_they_share_one_tiny_blob()
    {
        await using var server = await TestServer.StartAsync("--CacheService:Eviction:MaxEntriesPerNamespace=2");
        var tiny = Layers.Random(10, 5);
        await Layers.UploadAsync(server.Client, Ns, tiny);
        var outcomes = new List<CommitResponse>();
        foreach (var key in new[] { "a", "b", "c" })
        {
            outcomes.Add(await server.Client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key(key), Layer = Layers.Descriptor(tiny) }));
        }

        Assert.Equal([0L, 0L, 1L], outcomes.Select(o => o.EvictedEntries));
        Assert.False((await server.Client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("a") })).Hit);
        var stats = await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = Ns });
        Assert.Equal((2L, 10L, 1L), (stats.Entries, stats.StoredBytes, stats.Evictions));
    }

    [Fact]
    public async Task Invalid_configuration_stops_the_server_at_start_with_every_problem_named()
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(
            "--CacheService:Eviction:LowWatermarkRatio=1.5", "--CacheService:Limits:MaxChainSteps=0"));
        Assert.Contains("LowWatermarkRatio", e.Message, StringComparison.Ordinal);
        Assert.Contains("MaxChainSteps", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--CacheService:Limits:UploadIdleTimeout=00:00:00", "UploadIdleTimeout must be positive")]
    [InlineData("--CacheService:Limits:UploadIdleTimeout=-00:00:01", "UploadIdleTimeout must be positive")]
    [InlineData("--CacheService:Limits:MaxUploadSessions=0", "MaxUploadSessions must be positive")]
    [InlineData("--CacheService:Limits:StorageCeilingBytes=-1", "StorageCeilingBytes must not be negative")]
    [InlineData("--CacheService:Limits:MinFreeDiskBytes=-1", "MinFreeDiskBytes must not be negative")]
    [InlineData("--CacheService:Limits:MaxNamespaces=0", "MaxNamespaces must be positive")]
    [InlineData("--CacheService:Eviction:MaxEntriesPerNamespace=0", "MaxEntriesPerNamespace must be positive")]
    [InlineData("--CacheService:Limits:MaxNamespaces=garbage", "MaxNamespaces")]
    [InlineData("--CacheService:Storage:IndexEngine=7", "IndexEngine must be 'sqlite' or 'redis'")]
    [InlineData("--CacheService:Storage:BlobEngine=mongo", "BlobEngine")]
    [InlineData("--CacheService:Storage:IndexEngine=redis", "EntryKey is required with the redis index")]
    [InlineData("--CacheService:Integrity:EntryKey=c2hvcnQ=", "EntryKey: a key must have at least 32 bytes")]
    [InlineData("--CacheService:Integrity:PreviousEntryKeys:0=not base64", "PreviousEntryKeys")]
    [InlineData("--CacheService:Integrity:VerifiedRegistryReads=1.5", "VerifiedRegistryReads must be between 0 and 1")]
    [InlineData("--CacheService:Integrity:VerifiedRegistryReads=-0.1", "VerifiedRegistryReads must be between 0 and 1")]
    [InlineData("--CacheService:Integrity:VerifiedRegistryReads=NaN", "VerifiedRegistryReads must be between 0 and 1")]
    [InlineData("--CacheService:Integrity:ScrubInterval=00:00:00", "ScrubInterval must be more than zero")]
    [InlineData("--CacheService:Integrity:ScrubInterval=2.00:00:00", "ScrubInterval must be more than zero and at most a day")]
    [InlineData("--CacheService:Integrity:ScrubBytesPerRound=-1", "ScrubBytesPerRound must not be negative")]
    [InlineData("--CacheService:Registry:RedirectBlobGets=true", "RedirectBlobGets needs presigned URLs")]
    [InlineData("--CacheService:Auth:AnonymousScopes:0=write", "AnonymousScopes")]
    [InlineData("--CacheService:Auth:FailedAttemptsPerMinute=0", "FailedAttemptsPerMinute must be 1-1000000")]
    [InlineData("--CacheService:Auth:FailedAttemptsPerMinute=-5", "FailedAttemptsPerMinute must be 1-1000000")]
    [InlineData("--CacheService:Auth:ReloadInterval=-00:00:01", "ReloadInterval must not be negative")]
    [InlineData("--CacheService:Auth:RegistryTokenLifetime=00:00:00", "RegistryTokenLifetime must be 10 seconds to 1 day")]
    [InlineData("--CacheService:Auth:RegistryTokenLifetime=365.00:00:00", "RegistryTokenLifetime must be 10 seconds to 1 day")]
    [InlineData("--CacheService:Tls:ClientCaFile=/etc/hostname", "ClientCaFile needs TLS")]
    [InlineData("--CacheService:Tls:RequireClientCertificate=true", "RequireClientCertificate needs ClientCaFile")]
    [InlineData("--CacheService:Tls:ReloadInterval=-00:00:01", "ReloadInterval must not be negative")]
    [InlineData("--CacheService:Tls:KeyFile=/etc/hostname", "CertificateFile and KeyFile go together")]
    public async Task A_zero_negative_or_unknown_setting_stops_the_server_naming_it(string setting, string named)
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(setting));
        Assert.Contains(named, e.ToString(), StringComparison.Ordinal);
    }
}
