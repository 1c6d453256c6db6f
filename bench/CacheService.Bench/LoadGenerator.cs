using System.Diagnostics;
using HdrHistogram;

namespace CacheService.Bench;

/// <summary>What one load run measured.</summary>
/// <param name="Operations">Calls completed in the measured window.</param>
/// <param name="Seconds">Length of the measured window.</param>
/// <param name="P50">Median latency, milliseconds.</param>
/// <param name="P99">99th percentile latency, milliseconds.</param>
/// <param name="P999">99.9th percentile latency, milliseconds.</param>
internal sealed record LoadResult(long Operations, double Seconds, double P50, double P99, double P999)
{
    public double PerSecond => Operations / Seconds;
}

/// <summary>
/// Drives one operation in a closed loop (N callers, each starting its next call when the last
/// one ends) or an open loop (calls started at a fixed rate whatever the answers do, latency
/// measured from the intended start, so a slow answer cannot hide the queue behind it). Both warm
/// up first, then record latencies in an HdrHistogram (1 µs to 60 s, 3 significant digits).
/// </summary>
internal static class LoadGenerator
{
    public static async Task<LoadResult> ClosedLoopAsync(int callers, TimeSpan warmUp, TimeSpan duration, Func<long, Task> operation)
    {
        var histograms = Enumerable.Range(0, callers).Select(_ => NewHistogram()).ToArray();
        long sequence = 0, completed = 0;
        var measuring = false;
        var stop = false;
        var window = new Stopwatch();
        var workers = Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            while (!Volatile.Read(ref stop))
            {
                var started = Stopwatch.GetTimestamp();
                await operation(Interlocked.Increment(ref sequence));
                if (Volatile.Read(ref measuring))
                {
                    histograms[c].RecordValue(Math.Max(1, (long)Stopwatch.GetElapsedTime(started).TotalMicroseconds));
                    Interlocked.Increment(ref completed);
                }
            }
        })).ToArray();

        await Task.Delay(warmUp);
        window.Start();
        Volatile.Write(ref measuring, true);
        await Task.Delay(duration);
        Volatile.Write(ref measuring, false);
        window.Stop();
        Volatile.Write(ref stop, true);
        await Task.WhenAll(workers);
        return Summarize(histograms, Interlocked.Read(ref completed), window.Elapsed);
    }

    public static async Task<LoadResult> OpenLoopAsync(double perSecond, TimeSpan warmUp, TimeSpan duration, Func<long, Task> operation)
    {
        var histogram = NewHistogram();
        var gate = new Lock();
        var inFlight = new List<Task>();
        var total = warmUp + duration;
        var interval = TimeSpan.FromSeconds(1 / perSecond);
        var origin = Stopwatch.GetTimestamp();
        long completed = 0;
        for (long i = 0; ; i++)
        {
            var intended = interval * i;
            if (intended >= total)
            {
                break;
            }

            var wait = intended - Stopwatch.GetElapsedTime(origin);
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait);
            }

            var measured = intended >= warmUp;
            inFlight.Add(Task.Run(async () =>
            {
                await operation(i);
                if (measured)
                {
                    // From the moment the call should have started: time spent queued counts.
                    var latency = Stopwatch.GetElapsedTime(origin) - intended;
                    lock (gate)
                    {
                        histogram.RecordValue(Math.Max(1, (long)latency.TotalMicroseconds));
                        completed++;
                    }
                }
            }));
        }

        await Task.WhenAll(inFlight);
        return Summarize([histogram], completed, duration);
    }

    private static LongHistogram NewHistogram() => new(1, 60_000_000, 3);

    private static LoadResult Summarize(IEnumerable<LongHistogram> histograms, long operations, TimeSpan window)
    {
        var all = NewHistogram();
        foreach (var h in histograms)
        {
            all.Add(h);
        }

        double Ms(double percentile) => all.TotalCount == 0 ? 0 : all.GetValueAtPercentile(percentile) / 1000.0;
        return new LoadResult(operations, window.TotalSeconds, Ms(50), Ms(99), Ms(99.9));
    }
}
