using CacheService.Core;
using CacheService.Core.Index;
using CacheService.Core.Transfers;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Observability;

/// <summary>One reading of a namespace's counters from the index.</summary>
/// <param name="At">When it was taken.</param>
/// <param name="Usage">The counters then.</param>
public sealed record NamespaceSample(DateTimeOffset At, NamespaceUsage Usage);

/// <summary>
/// Reads every namespace's counters from the index each <see cref="ObservabilityOptions.SampleInterval"/>
/// (on the injected clock; the host's periodic work runs it): the entries and stored-bytes gauges
/// follow them, and the status page charts the last <see cref="ObservabilityOptions.HistoryLength"/> samples. Reading the index
/// here, not on every scrape, keeps a busy Prometheus from loading Redis. Each sample ranks the
/// namespaces for their labels (<see cref="CacheMetrics.RankNamespaces"/>); those beyond
/// <see cref="ObservabilityOptions.MaxNamespaceLabels"/> are summed under <c>other</c>. The total
/// of stored bytes goes to the <see cref="StorageGuard"/>, for the storage ceiling, and the list of
/// namespaces to the <see cref="NamespaceCensus"/>, for the namespace limit.
/// </summary>
public sealed class NamespaceSampler(ILayerIndex index, CacheMetrics metrics, StorageGuard guard, NamespaceCensus census, IOptions<ObservabilityOptions> options, TimeProvider time)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<NamespaceSample>> _history = new(StringComparer.Ordinal);

    /// <summary>The samples kept, per namespace label, oldest first.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<NamespaceSample>> History()
    {
        lock (_lock)
        {
            return _history.ToDictionary(h => h.Key, h => (IReadOnlyList<NamespaceSample>)[.. h.Value], StringComparer.Ordinal);
        }
    }

    /// <summary>Takes one sample of every namespace.</summary>
    public async Task SampleOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var all = new List<(string Namespace, NamespaceUsage Usage)>();
        var namespaces = await index.ListNamespacesAsync(cancellationToken);
        census.SetSampled(namespaces);
        foreach (var ns in namespaces)
        {
            all.Add((ns, await index.GetUsageAsync(ns, cancellationToken)));
        }

        metrics.RankNamespaces(all.Select(a => (a.Namespace, a.Usage.StoredBytes, a.Usage.Lookups)));
        var totals = new Dictionary<string, NamespaceUsage>(StringComparer.Ordinal);
        foreach (var (ns, usage) in all)
        {
            var label = metrics.NamespaceLabel(ns);
            totals[label] = totals.TryGetValue(label, out var sum) ? Add(sum, usage) : usage;
        }

        guard.SetStoredBytes(all.Sum(a => a.Usage.StoredBytes));
        metrics.SetNamespaceSizes(totals.Select(t => (t.Key, t.Value.Entries, t.Value.StoredBytes)));
        lock (_lock)
        {
            foreach (var (label, usage) in totals)
            {
                if (!_history.TryGetValue(label, out var samples))
                {
                    _history[label] = samples = new Queue<NamespaceSample>();
                }

                samples.Enqueue(new NamespaceSample(now, usage));
                while (samples.Count > options.Value.HistoryLength)
                {
                    samples.Dequeue();
                }
            }
        }
    }

    private static NamespaceUsage Add(NamespaceUsage a, NamespaceUsage b) => new(
        a.Lookups + b.Lookups, a.Hits + b.Hits, a.Entries + b.Entries, a.StoredBytes + b.StoredBytes,
        a.Evictions + b.Evictions, a.BytesUploaded + b.BytesUploaded, a.BytesDownloaded + b.BytesDownloaded);
}
