using System.Text.Json;
using CacheService.Core.Options;

namespace CacheService.Core.Keys;

/// <summary>One step as a client describes it.</summary>
public sealed record StepSpec(string Instruction, IReadOnlyList<KeyValuePair<string, string>> Args, Digest? SourcesDigest);

/// <summary>The inputs a committed key was derived from.</summary>
public sealed record KeyInputs(Digest ParentState, string Platform, StepSpec Step);

/// <summary>
/// <see cref="CacheKeyV2"/> behind the request limits, and the preimage a commit keeps so a later
/// miss can be explained. Every transport derives keys here.
/// </summary>
public sealed class KeyDerivation(LimitsOptions limits)
{
    /// <summary>
    /// Longest preimage kept, in characters. Inputs at the request limits make a preimage of
    /// megabytes, which the index would store with every entry outside any budget; a longer one
    /// is not kept (the key is still checked), and its miss goes unexplained.
    /// </summary>
    public const int MaxPreimageLength = 64 * 1024;

    /// <summary>Derives one step's key; <paramref name="field"/> names the step in error messages.</summary>
    public StepKey Derive(Digest parentState, string platform, StepSpec step, string field)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Instruction.Length > limits.MaxInstructionLength)
        {
            throw new InvalidFieldException($"{field}.instruction", $"is longer than {limits.MaxInstructionLength} characters");
        }

        if (step.Args.Count > limits.MaxArgsPerStep)
        {
            throw new InvalidFieldException($"{field}.args", $"has more than {limits.MaxArgsPerStep} entries");
        }

        try
        {
            return CacheKeyV2.Compute(new StepKeyInput(parentState, platform, step.Instruction, step.Args, step.SourcesDigest));
        }
        catch (InvalidFieldException e) when (e.Field != "platform")
        {
            throw e.Within(field);
        }
    }

    /// <summary>
    /// The preimage to keep with <paramref name="key"/>: the JSON of <paramref name="inputs"/>,
    /// which must derive that key. Empty when no inputs are given or when it would be longer than
    /// <see cref="MaxPreimageLength"/>.
    /// </summary>
    public string Preimage(Digest key, KeyInputs? inputs)
    {
        if (inputs is null)
        {
            return string.Empty;
        }

        var derived = Derive(inputs.ParentState, inputs.Platform, inputs.Step, "step");
        if (derived.Key != key)
        {
            throw new InvalidFieldException("key", "does not match the key derived from parent_state, platform and step");
        }

        var preimage = JsonSerializer.Serialize(new
        {
            version = CacheKeyV2.KeyDomain,
            parentState = inputs.ParentState.Value,
            platform = CacheKeyV2.NormalizePlatform(inputs.Platform),
            instruction = derived.NormalizedInstruction,
            args = inputs.Step.Args.ToDictionary(a => a.Key, a => a.Value, StringComparer.Ordinal),
            sourcesDigest = inputs.Step.SourcesDigest?.Value,
        });
        return preimage.Length <= MaxPreimageLength ? preimage : string.Empty;
    }
}
