using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Options;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Hosting;

/// <summary>Runs the <see cref="BlobCollector"/> every <see cref="EvictionOptions.CollectionInterval"/>.</summary>
internal sealed partial class BlobCollectionService(
    BlobCollector collector, IOptions<EvictionOptions> options, TimeProvider time, ILogger<BlobCollectionService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.CollectionInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var deleted = await collector.CollectOnceAsync(options.Value.BlobGracePeriod, stoppingToken);
                if (deleted > 0)
                {
                    LogCollected(deleted);
                }
            }
            catch (CacheServiceException e)
            {
                // A backend outage delays collection; the next round picks the blobs up.
                LogCollectionFailed(e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Deleted {Count} unreferenced blobs")]
    private partial void LogCollected(int count);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Blob collection failed: {Reason}")]
    private partial void LogCollectionFailed(string reason);
}
