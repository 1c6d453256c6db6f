namespace CacheService.Server.Hosting;

/// <summary>
/// Runs one piece of background work (collecting unreferenced blobs, sweeping orphans, sampling
/// namespaces) every interval on the injected clock. Any failure but shutdown is logged with its
/// exception and only delays the work to the next round: a background loop must never stop the
/// host (.NET stops the whole process when a background service throws). Settings are read
/// when the work starts, after options validation has reported every problem.
/// </summary>
internal sealed class PeriodicWork(
    string name, Func<TimeSpan> interval, Func<CancellationToken, Task<int>> work, bool runAtStart, TimeProvider time, ILogger<PeriodicWork> logger) : BackgroundService
{
    /// <summary>What the work is, as the log names it.</summary>
    public string Name => name;

    /// <summary>Rounds run so far, failed ones included.</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    private long _rounds;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(interval(), time);
        if (runAtStart)
        {
            await RunOnceAsync(stoppingToken);
        }

        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await RunOnceAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopped, or the host failed to start and is disposing its services: not a failure
        }
    }

    private async Task RunOnceAsync(CancellationToken stoppingToken)
    {
        try
        {
            var deleted = await work(stoppingToken);
            if (deleted > 0)
            {
                Log.BlobsDeleted(logger, name, deleted);
            }
        }
        catch (Exception e) when (!stoppingToken.IsCancellationRequested)
        {
            Log.BackgroundWorkFailed(logger, e, name);
        }
        finally
        {
            Interlocked.Increment(ref _rounds);
        }
    }
}
