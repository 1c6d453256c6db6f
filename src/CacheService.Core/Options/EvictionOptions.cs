using CacheService.Core.Index;

namespace CacheService.Core.Options;

/// <summary>
/// Per-namespace byte budgets and blob collection (configuration section <c>CacheService:Eviction</c>).
/// </summary>
/// <remarks>
/// Eviction is hysteretic: a commit that takes a namespace above its budget (the high watermark)
/// evicts down to <see cref="LowWatermarkRatio"/> of it, so a full namespace does not evict on
/// every single commit.
/// </remarks>
public sealed class EvictionOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Eviction";

    /// <summary>Budget of a namespace without its own entry in <see cref="NamespaceBudgetBytes"/>, in bytes of unique blobs. Default 10 GiB.</summary>
    public long DefaultBudgetBytes { get; set; } = 10L << 30;

    /// <summary>Budgets of named namespaces, in bytes.</summary>
    public Dictionary<string, long> NamespaceBudgetBytes { get; set; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Entries a namespace may hold, however small their blobs: past it, a commit evicts the least
    /// recently used. Bounds the index, which byte budgets do not (a million keys may share one
    /// tiny blob). Default 100,000.
    /// </summary>
    public long MaxEntriesPerNamespace { get; set; } = 100_000;

    /// <summary>Eviction stops at this fraction of the budget. Default 0.9.</summary>
    public double LowWatermarkRatio { get; set; } = 0.9;

    /// <summary>How long an unreferenced blob stays before deletion, so downloads in flight finish. Default 10 minutes.</summary>
    public TimeSpan BlobGracePeriod { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often the collector deletes blobs past their grace period. Default 1 minute.</summary>
    public TimeSpan CollectionInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often the store is swept for blobs no entry references (crash leftovers). Default 1 hour.</summary>
    public TimeSpan OrphanSweepInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The budget of <paramref name="ns"/>.</summary>
    public NamespaceBudget BudgetFor(string ns)
    {
        var high = NamespaceBudgetBytes.TryGetValue(ns, out var own) ? own : DefaultBudgetBytes;
        return new NamespaceBudget(high, (long)(high * LowWatermarkRatio), MaxEntriesPerNamespace);
    }

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (DefaultBudgetBytes <= 0) yield return "DefaultBudgetBytes must be positive";
        if (MaxEntriesPerNamespace <= 0) yield return "MaxEntriesPerNamespace must be positive";
        if (LowWatermarkRatio is <= 0 or > 1) yield return "LowWatermarkRatio must be in (0, 1]";
        if (BlobGracePeriod < TimeSpan.Zero) yield return "BlobGracePeriod must not be negative";
        if (CollectionInterval <= TimeSpan.Zero) yield return "CollectionInterval must be positive";
        if (OrphanSweepInterval <= TimeSpan.Zero) yield return "OrphanSweepInterval must be positive";
        foreach (var (name, bytes) in NamespaceBudgetBytes)
        {
            if (bytes <= 0) yield return $"NamespaceBudgetBytes[{name}] must be positive";
        }
    }
}
