using System.Collections.Concurrent;
using CacheService.Core;
using CacheService.Core.Lookups;
using CacheService.Core.Observation;

namespace CacheService.Server.Observability;

/// <summary>
/// The core's observer: every fact becomes a Prometheus sample, and a backend found unavailable
/// is also logged, with its cause, at most once per backend every <see cref="LogInterval"/> (an
/// outage must reach the operator, not flood the log with one line per request).
/// </summary>
internal sealed class MetricsObserver(CacheMetrics metrics, ILogger<MetricsObserver> logger) : ICacheObserver
{
    /// <summary>Least time between two warnings about the same backend.</summary>
    public static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    // Wall-clock ticks of the last warning per backend: log pacing follows real time, not the
    // injected clock that tests move for cache semantics.
    private readonly ConcurrentDictionary<string, long> _lastWarning = new(StringComparer.Ordinal);

    public void Lookup(string ns, LookupOutcome outcome) => metrics.Lookup(ns, outcome);

    public void ChainStep(StepOutcome outcome) => metrics.ChainStep(outcome);

    public void Evicted(string ns, int count) => metrics.Evictions(ns, count);

    public void LayerBytes(TransferDirection direction, long bytes) => metrics.LayerBytes(direction, bytes);

    public void Refused(Refusal reason) => metrics.Refused(reason);

    public void ForgedEntry(string ns)
    {
        metrics.ForgedEntry(ns);
        Log.ForgedEntry(logger, ns);
    }

    public void BlobVerified(string ns, Digest digest, BlobCheck check, long bytes, bool intact)
    {
        metrics.BlobVerified(check, bytes, intact);
        if (!intact)
        {
            Log.CorruptBlob(logger, digest.Value, ns, check == BlobCheck.Read ? "a read" : "the scrubber");
        }
    }

    public void BackendUnavailable(string backend, Exception? cause)
    {
        metrics.BackendError(backend);
        var now = Environment.TickCount64;
        var last = _lastWarning.GetOrAdd(backend, long.MinValue);
        if ((last == long.MinValue || now - last >= (long)LogInterval.TotalMilliseconds) && _lastWarning.TryUpdate(backend, now, last))
        {
            Log.BackendUnavailable(logger, cause, backend);
        }
    }
}
