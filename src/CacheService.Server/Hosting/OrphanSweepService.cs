using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Options;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Hosting;

/// <summary>Runs the <see cref="OrphanSweeper"/> every <see cref="EvictionOptions.OrphanSweepInterval"/>.</summary>
internal sealed partial class OrphanSweepService(
    OrphanSweeper sweeper, IOptions<EvictionOptions> options, TimeProvider time, ILogger<OrphanSweepService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.OrphanSweepInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var deleted = await sweeper.SweepOnceAsync(options.Value.BlobGracePeriod, stoppingToken);
                if (deleted > 0)
                {
                    LogSwept(deleted);
                }
            }
            catch (CacheServiceException e)
            {
                LogSweepFailed(e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 210, Level = LogLevel.Information, Message = "Deleted {Count} orphaned blobs")]
    private partial void LogSwept(int count);

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "Orphan sweep failed: {Reason}")]
    private partial void LogSweepFailed(string reason);
}
