using CacheService.Core.Index;
using CacheService.Core.Keys;

namespace CacheService.Core.Lookups;

/// <summary>
/// The state of one chain resolution, step by step. Config-only steps move the state by their
/// key; a layer step is looked up, and its hit moves the state by the cached layer's diff id
/// (OCI ChainID style), which is what makes the next layer step's key. The index drives the walk
/// through <see cref="Hit"/>, possibly inside its own transaction, so every method here is quick
/// and touches nothing outside this object.
/// </summary>
internal sealed class ChainWalk(KeyDerivation keys, Digest baseState, string platform, IReadOnlyList<StepSpec> steps)
{
    private readonly List<ResolvedStep> _resolved = new(steps.Count);

    // The state after the last resolved step.
    private Digest _state = baseState;

    // Index into `steps` of the layer step being looked up (or steps.Count when done).
    private int _next;

    // That step's derived key; null once the walk has passed the last step.
    private StepKey? _pending;

    /// <summary>Resolves the leading config-only steps; returns the first key to look up, or null when no layer step remains.</summary>
    public Digest? Start()
    {
        _pending = AdvanceToLayerStep();
        return _pending?.Key;
    }

    /// <summary>Records a hit for the step being looked up; returns the next key to look up, or null when done.</summary>
    public Digest? Hit(IndexEntry entry, string ns)
    {
        var step = _pending ?? throw new InvalidOperationException("no step is being looked up");
        _state = CacheKeyV2.NextState(_state, step, entry.Layer.DiffId);
        _resolved.Add(new ResolvedStep(StepOutcome.Hit, step.Key, entry.Layer, ns, _state, entry.Created));
        _next++;
        _pending = AdvanceToLayerStep();
        return _pending?.Key;
    }

    /// <summary>The chain as resolved: the step being looked up missed, and every step after it is pending.</summary>
    public ChainResult Finish(bool degraded)
    {
        if (_pending is { } missed)
        {
            _resolved.Add(new ResolvedStep(StepOutcome.Miss, missed.Key, null, null, null, null));
            for (var i = _next + 1; i < steps.Count; i++)
            {
                _resolved.Add(new ResolvedStep(StepOutcome.Pending, null, null, null, null, null));
            }

            _pending = null;
            _next = steps.Count;
        }

        return new ChainResult(_resolved, degraded);
    }

    private StepKey? AdvanceToLayerStep()
    {
        for (; _next < steps.Count; _next++)
        {
            var step = keys.Derive(_state, platform, steps[_next], $"steps[{_next}]");
            if (step.IsLayerStep)
            {
                return step;
            }

            _state = CacheKeyV2.NextState(_state, step, null);
            _resolved.Add(new ResolvedStep(StepOutcome.Config, step.Key, null, null, _state, null));
        }

        return null;
    }
}
