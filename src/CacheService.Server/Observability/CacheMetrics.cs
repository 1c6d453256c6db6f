using System.Collections.Concurrent;
using CacheService.Core.Lookups;
using CacheService.Core.Observation;
using Microsoft.Extensions.Options;
using Prometheus;

namespace CacheService.Server.Observability;

/// <summary>
/// The Prometheus metrics of one server (DESIGN.md §6), in a registry of its own so that two
/// servers in one process (tests) do not share counters. Counters count what this replica
/// served, so <c>sum()</c> over replicas is the farm's total; the per-namespace gauges are
/// read from the shared index, so every replica reports the same value (use <c>max()</c>).
/// </summary>
/// <remarks>
/// Built on prometheus-net rather than the OpenTelemetry exporter: it is stable (the OTel
/// Prometheus exporter is still a beta), writes Prometheus' own text format with HELP and TYPE
/// lines that <c>promtool check metrics</c> accepts, and a labelled counter costs one
/// dictionary lookup on the hot path.
/// </remarks>
public sealed class CacheMetrics
{
    /// <summary>The label of namespaces beyond <see cref="ObservabilityOptions.MaxNamespaceLabels"/>.</summary>
    public const string OtherNamespace = "other";

    private readonly int _maxNamespaces;
    private readonly ConcurrentDictionary<string, bool> _labelled = new(StringComparer.Ordinal);
    private readonly Lock _admission = new();
    private readonly Counter _lookups;
    private readonly Counter _chainSteps;
    private readonly Counter _layerBytes;
    private readonly Counter _evictions;
    private readonly Counter _backendErrors;
    private readonly Counter _registryRequests;
    private readonly Counter _refusals;
    private readonly Counter _forgedEntries;
    private readonly Counter _verifiedBytes;
    private readonly Counter _corruptBlobs;
    private readonly Histogram _rpcDuration;
    private readonly Gauge _storedBytes;
    private readonly Gauge _entries;

    /// <summary>Creates the collectors in a new registry.</summary>
    public CacheMetrics(IOptions<ObservabilityOptions> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _maxNamespaces = options.Value.MaxNamespaceLabels;
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        var factory = Metrics.WithCustomRegistry(Registry);
        _lookups = factory.CreateCounter("cacheservice_lookups_total", "Cache lookups (Lookup calls and ResolveChain layer steps) by namespace asked and result: hit, miss, or degraded (the index could not be asked).", "namespace", "result");
        _chainSteps = factory.CreateCounter("cacheservice_resolve_chain_steps_total", "ResolveChain steps by result: hit, miss, config or pending.", "result");
        _layerBytes = factory.CreateCounter("cacheservice_layer_bytes_total", "Layer bytes through the server by direction: upload or download.", "direction");
        _evictions = factory.CreateCounter("cacheservice_evictions_total", "Entries evicted to keep a namespace within its budget.", "namespace");
        _backendErrors = factory.CreateCounter("cacheservice_backend_errors_total", "Backend calls that found the backend unavailable (a lookup the index could not answer in time included), by backend: index or blobs.", "backend");
        _registryRequests = factory.CreateCounter("cacheservice_registry_requests_total", "Requests to the OCI Distribution API under /v2/, by method and HTTP status.", "method", "status");
        _refusals = factory.CreateCounter("cacheservice_refusals_total", "Requests refused by a policy, by reason: upload_sessions, namespace_budget, storage_ceiling, free_disk or namespace_count.", "reason");
        _forgedEntries = factory.CreateCounter("cacheservice_forged_entries_total", "Index entries whose MAC did not verify (written by something other than this server's keys): each was a miss and was removed, by namespace.", "namespace");
        _verifiedBytes = factory.CreateCounter("cacheservice_verified_bytes_total", "Stored blob bytes hashed against their digests, by check: read (a whole blob on its way to a client) or scrub (the background scrubber).", "check");
        _corruptBlobs = factory.CreateCounter("cacheservice_corrupt_blobs_total", "Stored blobs whose bytes did not match their digest, purged with the entries that named them, by the check that found them: read or scrub.", "check");
        _rpcDuration = factory.CreateHistogram("cacheservice_rpc_duration_seconds", "gRPC call duration by method and status code.", new HistogramConfiguration
        {
            LabelNames = ["method", "code"],
            Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        });
        _storedBytes = factory.CreateGauge("cacheservice_stored_bytes", "Bytes of blobs a namespace's entries reference, from the index.", "namespace");
        _entries = factory.CreateGauge("cacheservice_entries", "Entries in a namespace, from the index.", "namespace");
    }

    /// <summary>The registry <c>/metrics</c> serves.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>The label a namespace is counted under: its own while there is room, else <see cref="OtherNamespace"/>.</summary>
    public string NamespaceLabel(string ns)
    {
        if (_labelled.ContainsKey(ns))
        {
            return ns;
        }

        lock (_admission)
        {
            if (_labelled.Count < _maxNamespaces)
            {
                _labelled[ns] = true;
                return ns;
            }
        }

        return OtherNamespace;
    }

    /// <summary>
    /// Gives the labels to the namespaces of the index that matter most (stored bytes, then
    /// lookups), from a sample of all of them; the sampler calls it. Until then, and while labels
    /// are free, names get one first come, first served; at each ranking any namespace outside the
    /// top loses its label and its series, so lookups of made-up names can hold labels for one
    /// sample interval at most and never push out a namespace that holds data.
    /// </summary>
    public void RankNamespaces(IEnumerable<(string Namespace, long StoredBytes, long Lookups)> usage)
    {
        ArgumentNullException.ThrowIfNull(usage);
        var top = usage.OrderByDescending(u => u.StoredBytes).ThenByDescending(u => u.Lookups).ThenBy(u => u.Namespace, StringComparer.Ordinal)
            .Take(_maxNamespaces).Select(u => u.Namespace).ToHashSet(StringComparer.Ordinal);
        lock (_admission)
        {
            foreach (var ns in _labelled.Keys.Where(ns => !top.Contains(ns)))
            {
                _labelled.TryRemove(ns, out _);
                foreach (var result in (string[])["hit", "miss", "degraded"])
                {
                    _lookups.RemoveLabelled(ns, result);
                }

                _evictions.RemoveLabelled(ns);
                _entries.RemoveLabelled(ns);
                _storedBytes.RemoveLabelled(ns);
            }

            foreach (var ns in top)
            {
                _labelled[ns] = true;
            }
        }
    }

    /// <summary>Counts one lookup of <paramref name="ns"/>.</summary>
    public void Lookup(string ns, LookupOutcome outcome) =>
        _lookups.WithLabels(NamespaceLabel(ns), outcome switch { LookupOutcome.Hit => "hit", LookupOutcome.Miss => "miss", _ => "degraded" }).Inc();

    /// <summary>Counts one step of a ResolveChain answer.</summary>
    public void ChainStep(StepOutcome outcome) =>
        _chainSteps.WithLabels(outcome switch { StepOutcome.Hit => "hit", StepOutcome.Miss => "miss", StepOutcome.Config => "config", _ => "pending" }).Inc();

    /// <summary>Counts layer bytes received (<c>upload</c>) or sent (<c>download</c>).</summary>
    public void LayerBytes(TransferDirection direction, long bytes) =>
        _layerBytes.WithLabels(direction == TransferDirection.Upload ? "upload" : "download").Inc(bytes);

    /// <summary>Counts bytes hashed against their digest, and a blob found corrupt.</summary>
    public void BlobVerified(BlobCheck check, long bytes, bool intact)
    {
        var label = check == BlobCheck.Read ? "read" : "scrub";
        _verifiedBytes.WithLabels(label).Inc(bytes);
        if (!intact)
        {
            _corruptBlobs.WithLabels(label).Inc();
        }
    }

    /// <summary>Counts entries evicted from <paramref name="ns"/>.</summary>
    public void Evictions(string ns, long count)
    {
        if (count > 0)
        {
            _evictions.WithLabels(NamespaceLabel(ns)).Inc(count);
        }
    }

    /// <summary>Counts a request that found <paramref name="backend"/> unavailable.</summary>
    public void BackendError(string backend) => _backendErrors.WithLabels(backend).Inc();

    /// <summary>Counts one request to the registry API.</summary>
    public void RegistryRequest(string method, int status) => _registryRequests.WithLabels(method, status.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();

    /// <summary>Counts one entry that failed its MAC check.</summary>
    public void ForgedEntry(string ns) => _forgedEntries.WithLabels(NamespaceLabel(ns)).Inc();

    /// <summary>Counts one request refused by a policy.</summary>
    public void Refused(Refusal reason) => _refusals.WithLabels(reason switch
    {
        Refusal.UploadSessions => "upload_sessions",
        Refusal.NamespaceBudget => "namespace_budget",
        Refusal.StorageCeiling => "storage_ceiling",
        Refusal.FreeDisk => "free_disk",
        _ => "namespace_count",
    }).Inc();

    /// <summary>Records one gRPC call.</summary>
    public void Rpc(string method, string code, TimeSpan duration) => _rpcDuration.WithLabels(method, code).Observe(duration.TotalSeconds);

    /// <summary>Sets the per-namespace gauges from an index sample; namespaces without a label of their own are summed under <see cref="OtherNamespace"/>.</summary>
    public void SetNamespaceSizes(IEnumerable<(string Namespace, long Entries, long StoredBytes)> sample)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var totals = new Dictionary<string, (long Entries, long Bytes)>(StringComparer.Ordinal);
        foreach (var (ns, entries, bytes) in sample)
        {
            var label = NamespaceLabel(ns);
            var (e, b) = totals.GetValueOrDefault(label);
            totals[label] = (e + entries, b + bytes);
        }

        foreach (var (label, (entries, bytes)) in totals)
        {
            _entries.WithLabels(label).Set(entries);
            _storedBytes.WithLabels(label).Set(bytes);
        }
    }
}
