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
    }
}
