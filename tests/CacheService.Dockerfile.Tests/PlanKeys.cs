using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile.Tests;

/// <summary>Every step's key of a plan as a build would see it.</summary>
internal static class PlanKeys
{
    /// <summary>
    /// "stage/index" -> key: the chain is walked as the server walks it, with each layer step
    /// producing a layer whose diff id follows its key.
    /// </summary>
    public static Dictionary<string, Digest> Of(BuildPlan plan)
    {
        var keys = new Dictionary<string, Digest>();
        var finals = new Dictionary<int, Digest>();
        foreach (var stage in plan.Stages)
        {
            var state = stage.Base.State ?? finals[stage.Base.Stage!.Value];
            foreach (var step in stage.Steps)
            {
                var key = CacheKeyV2.Compute(new StepKeyInput(state, stage.Platform, step.Instruction, step.Args, step.SourcesDigest(s => finals[s])));
                keys[$"{stage.Name}/{step.Index}"] = key.Key;
                state = CacheKeyV2.NextState(state, key, key.IsLayerStep ? Digest.Of(key.Preimage) : null);
            }

            finals[stage.Index] = state;
        }

        return keys;
    }
}
