using CacheService.Core;

namespace CacheService.Server.Hosting;

/// <summary>
/// Runs one piece of blob housekeeping (collecting unreferenced blobs, sweeping orphans) every
/// interval on the injected clock. A backend outage only delays the work to the next round.
/// Settings are read when the work starts, after options validation has reported every problem.
/// </summary>
internal sealed partial class PeriodicBlobWork(
    string name, Func<TimeSpan> interval, Func<CancellationToken, Task<int>> work, TimeProvider time, ILogger<PeriodicBlobWork> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval(), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var deleted = await work(stoppingToken);
                if (deleted > 0)
                {
                    LogDeleted(name, deleted);
                }
            }
            catch (CacheServiceException e)
            {
                LogFailed(name, e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "{Work}: deleted {Count} blobs")]
    private partial void LogDeleted(string work, int count);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "{Work} failed: {Reason}")]
    private partial void LogFailed(string work, string reason);
}
