using CacheService.Client;
using CacheService.Core;
using CacheService.Dockerfile;
using Wire = CacheService.Api.V1;

namespace CacheService.Cli;

/// <summary>What the cache holds for one step of a plan.</summary>
internal enum PlanStatus
{
    /// <summary>Cached: a layer to pull, or a config-only step on a cached chain.</summary>
    Hit,

    /// <summary>Not cached: rebuild from here.</summary>
    Miss,

    /// <summary>After a miss in its stage (or in a stage it reads): its key is not known yet.</summary>
    Pending,
}

/// <summary>One step of a resolved plan.</summary>
internal sealed record PlanStep(PlannedStage Stage, PlannedStep Step, PlanStatus Status, Digest? Key, Wire.LayerDescriptor? Layer, string? Namespace, DateTimeOffset? Created);

/// <summary>A plan resolved against the cache.</summary>
internal sealed record ResolvedPlan(IReadOnlyList<PlanStep> Steps, bool Degraded)
{
    public int CachedSteps => Steps.Count(s => s.Status == PlanStatus.Hit);
}

/// <summary>
/// Resolves a build plan with one ResolveChain per stage, in Dockerfile order. A stage that
/// starts from, copies from or mounts another stage can go on only while that stage is fully
/// cached, because only then is its final state known; from there on its steps are pending.
/// </summary>
internal static class PlanResolver
{
    public static async Task<ResolvedPlan> ResolveAsync(
        BuildPlan plan, CacheServiceClient client, string ns, IReadOnlyList<string> fallbacks, CancellationToken cancellationToken)
    {
        var finalStates = new Dictionary<int, Digest>();
        var results = new List<PlanStep>();
        var degraded = false;
        foreach (var stage in plan.Stages)
        {
            var baseState = Known(stage.Base, finalStates);
            var sendable = baseState is null ? [] : stage.Steps.TakeWhile(s => s.Sources.All(src => Known(src, finalStates) is not null)).ToList();
            var state = baseState;
            if (sendable.Count > 0)
            {
                var request = new Wire.ResolveChainRequest { Namespace = ns, BaseState = baseState!.Value.Value, Platform = stage.Platform };
                request.FallbackNamespaces.AddRange(fallbacks);
                request.Steps.AddRange(sendable.Select(s => ToWire(s, finalStates)));
                var response = await client.ResolveChainAsync(request, cancellationToken);
                degraded |= response.Degraded;
                for (var i = 0; i < sendable.Count; i++)
                {
                    var wire = response.Steps[i];
                    var status = wire.Status switch
                    {
                        Wire.StepStatus.Hit or Wire.StepStatus.Config => PlanStatus.Hit,
                        Wire.StepStatus.Miss => PlanStatus.Miss,
                        _ => PlanStatus.Pending,
                    };
                    var key = wire.Key.Length > 0 ? Digest.Parse(wire.Key, "key") : (Digest?)null;
                    var created = wire.CreatedAtUnix > 0 ? DateTimeOffset.FromUnixTimeSeconds(wire.CreatedAtUnix) : (DateTimeOffset?)null;
                    results.Add(new PlanStep(stage, sendable[i], status, key, wire.Layer, wire.Namespace.Length > 0 ? wire.Namespace : null, created));
                }

                state = response.CachedSteps == sendable.Count ? Digest.Parse(response.Steps[^1].State, "state") : null;
            }

            foreach (var step in stage.Steps.Skip(sendable.Count))
            {
                results.Add(new PlanStep(stage, step, PlanStatus.Pending, null, null, null, null));
            }

            if (state is { } final && sendable.Count == stage.Steps.Count)
            {
                finalStates[stage.Index] = final;
            }
        }

        return new ResolvedPlan(results, degraded);
    }

    private static Digest? Known(StateSource source, Dictionary<int, Digest> finalStates) =>
        source.State ?? (finalStates.TryGetValue(source.Stage!.Value, out var state) ? state : null);

    private static Wire.StepInput ToWire(PlannedStep step, Dictionary<int, Digest> finalStates)
    {
        var wire = new Wire.StepInput
        {
            Instruction = step.Instruction,
            SourcesDigest = step.SourcesDigest(stage => finalStates[stage])?.Value ?? string.Empty,
        };
        wire.Args.AddRange(step.Args.Select(a => new Wire.BuildArg { Name = a.Key, Value = a.Value }));
        return wire;
    }
}
