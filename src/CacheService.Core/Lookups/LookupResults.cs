using CacheService.Core.Index;

namespace CacheService.Core.Lookups;

/// <summary>The answer to a lookup.</summary>
/// <param name="Entry">The entry found, or null on a miss.</param>
/// <param name="Namespace">The namespace that answered the hit.</param>
/// <param name="Degraded">True when the index could not be asked and the miss is assumed.</param>
public sealed record LookupResult(IndexEntry? Entry, string? Namespace, bool Degraded);

/// <summary>What <see cref="CacheLookups.ResolveChainAsync"/> found for one step.</summary>
public enum StepOutcome
{
    /// <summary>A cached layer step.</summary>
    Hit,

    /// <summary>A layer step that is not cached: rebuild from here.</summary>
    Miss,

    /// <summary>A config-only step: nothing to fetch.</summary>
    Config,

    /// <summary>After a miss: the key depends on the layer the rebuild produces.</summary>
    Pending,
}

/// <summary>One step of a resolved chain.</summary>
/// <param name="Outcome">What the step needs.</param>
/// <param name="Key">Its key; null when pending.</param>
/// <param name="Layer">The cached layer of a hit.</param>
/// <param name="Namespace">The namespace that answered a hit.</param>
/// <param name="StateAfter">The state after the step; null from the first miss on.</param>
/// <param name="Created">When the entry of a hit was committed.</param>
public sealed record ResolvedStep(StepOutcome Outcome, Digest? Key, LayerDescriptor? Layer, string? Namespace, Digest? StateAfter, DateTimeOffset? Created);

/// <summary>A resolved chain.</summary>
public sealed record ChainResult(IReadOnlyList<ResolvedStep> Steps, bool Degraded)
{
    /// <summary>Leading steps that need no rebuild.</summary>
    public int CachedSteps => Steps.TakeWhile(s => s.Outcome is StepOutcome.Hit or StepOutcome.Config).Count();
}
