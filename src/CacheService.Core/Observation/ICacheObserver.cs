using CacheService.Core.Lookups;

namespace CacheService.Core.Observation;

/// <summary>
/// Told of each fact where the core knows it: a lookup's result, an eviction, layer bytes moved,
/// a backend found unavailable. Every transport goes through the core, so gRPC and the registry
/// API count alike by construction; no transport calls metrics itself.
/// </summary>
/// <remarks>Implementations must be cheap and must not throw: they run on the hot path.</remarks>
public interface ICacheObserver
{
    /// <summary>One lookup of <paramref name="ns"/> (the namespace asked first) answered.</summary>
    void Lookup(string ns, LookupOutcome outcome);

    /// <summary>One step of a resolved chain.</summary>
    void ChainStep(StepOutcome outcome);

    /// <summary>Entries evicted from <paramref name="ns"/> to keep it within its budget.</summary>
    void Evicted(string ns, int count);

    /// <summary>Layer bytes received or sent.</summary>
    void LayerBytes(TransferDirection direction, long bytes);

    /// <summary>A call found <paramref name="backend"/> (<c>index</c> or <c>blobs</c>) unavailable.</summary>
    void BackendUnavailable(string backend, Exception? cause);

    /// <summary>A request refused by a policy (a limit or a budget), not by a fault.</summary>
    void Refused(Refusal reason);

    /// <summary>An entry of <paramref name="ns"/> whose MAC did not verify was found, treated as a miss and removed.</summary>
    void ForgedEntry(string ns);

    /// <summary>A stored blob (<paramref name="bytes"/> long) was hashed against its digest; <paramref name="intact"/> false when it did not match (it was purged).</summary>
    void BlobVerified(string ns, Digest digest, BlobCheck check, long bytes, bool intact);
}

/// <summary>What hashed a stored blob against its digest.</summary>
public enum BlobCheck
{
    /// <summary>A whole-blob read, on its way to a client.</summary>
    Read,

    /// <summary>The background scrubber.</summary>
    Scrub,
}

/// <summary>Which policy refused a request.</summary>
public enum Refusal
{
    /// <summary>Too many registry upload sessions open.</summary>
    UploadSessions,

    /// <summary>An upload larger than its namespace's whole budget.</summary>
    NamespaceBudget,

    /// <summary>An upload past the global storage ceiling.</summary>
    StorageCeiling,

    /// <summary>An upload that would leave the data directory's disk below its free-space floor.</summary>
    FreeDisk,

    /// <summary>A write that would create a namespace past the namespace limit.</summary>
    NamespaceCount,
}

/// <summary>How a lookup ended.</summary>
public enum LookupOutcome
{
    /// <summary>Found.</summary>
    Hit,

    /// <summary>Not found.</summary>
    Miss,

    /// <summary>The index could not be asked in time; a miss was assumed.</summary>
    Degraded,
}

/// <summary>Which way layer bytes moved, seen from the server.</summary>
public enum TransferDirection
{
    /// <summary>From a client into the store.</summary>
    Upload,

    /// <summary>From the store to a client.</summary>
    Download,
}

/// <summary>An observer that ignores everything (tools and tests that do not count).</summary>
public sealed class NullCacheObserver : ICacheObserver
{
    /// <summary>The one instance.</summary>
    public static NullCacheObserver Instance { get; } = new();

    /// <inheritdoc />
    public void Lookup(string ns, LookupOutcome outcome)
    {
    }

    /// <inheritdoc />
    public void ChainStep(StepOutcome outcome)
    {
    }

    /// <inheritdoc />
    public void Evicted(string ns, int count)
    {
    }

    /// <inheritdoc />
    public void LayerBytes(TransferDirection direction, long bytes)
    {
    }

    /// <inheritdoc />
    public void BackendUnavailable(string backend, Exception? cause)
    {
    }

    /// <inheritdoc />
    public void Refused(Refusal reason)
    {
    }

    /// <inheritdoc />
    public void ForgedEntry(string ns)
    {
    }

    /// <inheritdoc />
    public void BlobVerified(string ns, Digest digest, BlobCheck check, long bytes, bool intact)
    {
    }
}
