namespace CacheService.Core.Options;

/// <summary>Request limits (configuration section <c>CacheService:Limits</c>).</summary>
public sealed class LimitsOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Limits";

    /// <summary>Largest layer blob accepted, in bytes. Default 10 GiB.</summary>
    public long MaxLayerBytes { get; set; } = 10L << 30;

    /// <summary>Longest instruction accepted, in UTF-16 characters. Default 65,536.</summary>
    public int MaxInstructionLength { get; set; } = 64 * 1024;

    /// <summary>Most build args and environment variables one step may carry. Default 1,000.</summary>
    public int MaxArgsPerStep { get; set; } = 1000;

    /// <summary>Most steps in one ResolveChain call. Default 1,000.</summary>
    public int MaxChainSteps { get; set; } = 1000;

    /// <summary>Most digests or keys in one StatLayers or Delete call, and fallback namespaces in one lookup. Default 1,000.</summary>
    public int MaxBatch { get; set; } = 1000;

    /// <summary>How long a lookup may wait for the index before it answers a degraded miss. Default 500 ms.</summary>
    public TimeSpan LookupTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long an upload may go without a new chunk before the server abandons it (and its staged
    /// bytes): a client that stops sending must not hold a stream and a staging file forever.
    /// Default 1 minute.
    /// </summary>
    public TimeSpan UploadIdleTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Most registry upload sessions (POST without a digest, then PATCHes) open at once on one
    /// replica; one more is refused with 429 until one ends or goes idle past
    /// <see cref="UploadIdleTimeout"/>. Default 1,000.
    /// </summary>
    public int MaxUploadSessions { get; set; } = 1000;

    /// <summary>
    /// Hard limit on the bytes stored over all namespaces (every namespace's stored bytes plus
    /// uploads in flight); an upload past it is refused with RESOURCE_EXHAUSTED. 0: no ceiling
    /// beyond the namespaces' budgets and <see cref="MinFreeDiskBytes"/>. Default 0.
    /// </summary>
    public long StorageCeilingBytes { get; set; }

    /// <summary>
    /// Free space an upload must leave on the data directory's disk (blobs of the embedded
    /// store, staged uploads); an upload that would leave less is refused with
    /// RESOURCE_EXHAUSTED. 0 turns the check off. Default 1 GiB.
    /// </summary>
    public long MinFreeDiskBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Most namespaces the index may hold (see <see cref="NamespaceCensus"/>): past it, lookups in
    /// a namespace it does not hold create nothing and writes that would create one are refused.
    /// Namespaces stay in the index once created (their counters), so a farm with a namespace per
    /// branch needs room for every branch it ever had. Default 100,000.
    /// </summary>
    public int MaxNamespaces { get; set; } = 100_000;

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (MaxLayerBytes <= 0) yield return "MaxLayerBytes must be positive";
        if (MaxInstructionLength <= 0) yield return "MaxInstructionLength must be positive";
        if (MaxArgsPerStep < 0) yield return "MaxArgsPerStep must not be negative";
        if (MaxChainSteps <= 0) yield return "MaxChainSteps must be positive";
        if (MaxBatch <= 0) yield return "MaxBatch must be positive";
        if (LookupTimeout <= TimeSpan.Zero) yield return "LookupTimeout must be positive";
        if (UploadIdleTimeout <= TimeSpan.Zero) yield return "UploadIdleTimeout must be positive";
        if (MaxUploadSessions <= 0) yield return "MaxUploadSessions must be positive";
        if (StorageCeilingBytes < 0) yield return "StorageCeilingBytes must not be negative (0: no ceiling)";
        if (MaxNamespaces <= 0) yield return "MaxNamespaces must be positive";
        if (MinFreeDiskBytes < 0) yield return "MinFreeDiskBytes must not be negative (0: no floor)";
    }
}
