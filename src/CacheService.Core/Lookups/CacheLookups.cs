using CacheService.Core.Keys;
using CacheService.Core.Observation;
using CacheService.Core.Options;

namespace CacheService.Core.Lookups;

/// <summary>
/// The reads a build waits on: a lookup (a one-step walk) and a chain resolution, both through
/// <see cref="Index.ILayerIndex.WalkAsync"/>, so one rule decides fallback namespaces and counting
/// (the lookup counts in the first namespace's stats; the first namespace that holds the key wins).
/// Reads the index cannot answer in time are degraded misses (<see cref="DegradedReads"/>).
/// </summary>
public sealed class CacheLookups(CacheBackends backends, KeyDerivation keys, LimitsOptions limits)
{
    private readonly DegradedReads _reads = new(limits, backends.Observer);

    /// <summary>Looks <paramref name="key"/> up in each namespace in order; the first hit wins.</summary>
    public async Task<LookupResult> LookupAsync(IReadOnlyList<string> namespaces, Digest key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(namespaces);
        Index.ChainHit? hit = null;
        var degraded = await _reads.TryReadAsync(
            async ct => hit = await WalkAsync(namespaces, key, (_, _) => null, ct) is [var first, ..] ? first : null,
            cancellationToken);
        var result = degraded || hit is null ? new LookupResult(null, null, degraded) : new LookupResult(hit.Entry, hit.Namespace, false);
        backends.Observer.Lookup(namespaces[0], result.Entry is not null ? LookupOutcome.Hit : degraded ? LookupOutcome.Degraded : LookupOutcome.Miss);
        return result;
    }

    /// <summary>
    /// Walks <paramref name="steps"/> from <paramref name="baseState"/> (see <see cref="ChainWalk"/>)
    /// and stops at the first layer step that misses. Steps after it are pending: their keys depend
    /// on the layer the rebuild will produce.
    /// </summary>
    public async Task<ChainResult> ResolveChainAsync(
        IReadOnlyList<string> namespaces, Digest baseState, string platform, IReadOnlyList<StepSpec> steps, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(namespaces);
        ArgumentNullException.ThrowIfNull(steps);
        var walk = new ChainWalk(keys, baseState, platform, steps);
        var degraded = walk.Start() is { } first
            && await _reads.TryReadAsync(ct => WalkAsync(namespaces, first, walk.Hit, ct), cancellationToken);
        var chain = walk.Finish(degraded);
        foreach (var step in chain.Steps)
        {
            backends.Observer.ChainStep(step.Outcome);
            if (step.Outcome is StepOutcome.Hit or StepOutcome.Miss)
            {
                backends.Observer.Lookup(namespaces[0], step.Outcome == StepOutcome.Hit ? LookupOutcome.Hit : degraded ? LookupOutcome.Degraded : LookupOutcome.Miss);
            }
        }

        return chain;
    }

    // A namespace past the namespace limit that the index does not hold is walked without
    // counting, so that naming it creates nothing (its fallbacks are still read).
    private Task<IReadOnlyList<Index.ChainHit>> WalkAsync(IReadOnlyList<string> namespaces, Digest first, Func<Index.IndexEntry, string, Digest?> next, CancellationToken cancellationToken) =>
        backends.Namespaces.TryAdmit(namespaces[0])
            ? backends.Index.WalkAsync(namespaces, first, next, cancellationToken)
            : Index.StepwiseWalk.WalkAsync(backends.Index, namespaces, first, next, cancellationToken, count: false);
}
