namespace CacheService.Server.Observability;

/// <summary>Metrics and the status page (configuration section <c>CacheService:Observability</c>).</summary>
public sealed class ObservabilityOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Observability";

    /// <summary>
    /// Namespaces that get a <c>namespace</c> label of their own, first come first served; the
    /// rest are counted under <c>other</c>, so a flood of PR namespaces cannot blow up the number
    /// of series. Default 100.
    /// </summary>
    public int MaxNamespaceLabels { get; set; } = 100;

    /// <summary>How often entries and stored bytes are read from the index for the gauges and the status page. Default 10 seconds.</summary>
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Samples kept per namespace for the status page's chart. Default 360 (an hour at 10 seconds).</summary>
    public int HistoryLength { get; set; } = 360;

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (MaxNamespaceLabels is < 1 or > 10_000) yield return "MaxNamespaceLabels must be 1-10000";
        if (SampleInterval < TimeSpan.FromSeconds(1)) yield return "SampleInterval must be at least 1 second";
        if (HistoryLength is < 2 or > 100_000) yield return "HistoryLength must be 2-100000";
    }
}
