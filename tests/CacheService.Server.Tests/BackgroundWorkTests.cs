using CacheService.Api.V1;
using CacheService.Blobs.FileSystem;
using CacheService.Core.Blobs;
using CacheService.Server.Hosting;
using CacheService.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Tests;

/// <summary>
/// Background loops survive any failure but shutdown: .NET stops the whole host when a
/// background service throws, so one I/O error in housekeeping must not take the cache down.
/// </summary>
public sealed class BackgroundWorkTests
{
    [Fact]
    public async Task A_loop_whose_store_throws_an_IOException_logs_it_with_the_exception_and_runs_again()
    {
        var logs = new CapturedLogs();
        await using var server = await TestServer.StartAsync(
            services =>
            {
                services.AddSingleton<ILoggerProvider>(logs);
                services.AddSingleton<IBlobStore>(sp => new UnlistableStore(new FileSystemBlobStore(
                    Path.Combine(sp.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory, "blobs"))));
            },
            "--CacheService:Eviction:OrphanSweepInterval=00:01:00");
        var sweep = server.Services.GetServices<IHostedService>().OfType<PeriodicWork>().Single(w => w.Name == "orphan sweep");

        // The loop starts on its own thread (.NET 10 runs ExecuteAsync as a task), so its timer may
        // not exist yet: move the clock a minute at a time until it has run twice.
        for (var attempt = 0; attempt < 200 && sweep.Rounds < 2; attempt++)
        {
            server.Time.Advance(TimeSpan.FromMinutes(1));
            await Task.Delay(25);
        }

        Assert.True(sweep.Rounds >= 2, $"the orphan sweep ran {sweep.Rounds} times");
        Assert.False(server.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
        Assert.Equal(0, (await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "still/serving" })).Lookups);
        var failures = logs.Entries.Where(e => e.EventId == 201).ToList();
        Assert.All(failures, e => Assert.IsType<IOException>(e.Exception));
        foreach (var loop in new[] { "orphan sweep", "blob scrub" }) // both list the store
        {
            var logged = failures.Count(e => e.Message.StartsWith(loop + " failed", StringComparison.Ordinal));
            Assert.True(logged >= 2, $"{loop}: {logged} failures logged");
        }
    }

    /// <summary>The real store, whose listing fails as a broken disk would.</summary>
    private sealed class UnlistableStore(IBlobStore inner) : BlobStoreDecorator(inner)
    {
        public override IAsyncEnumerable<StoredBlob> ListAsync(CancellationToken cancellationToken) =>
            throw new IOException("Input/output error reading blobs/");
    }
}
