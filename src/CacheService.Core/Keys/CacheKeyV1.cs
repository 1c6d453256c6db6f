namespace CacheService.Core.Keys;

/// <summary>
/// Version 1 of the cache key derivation: the one pure function every component (server, client
/// SDK, CLI) uses. docs/cache-key.md specifies the bytes; testdata/cache-keys/v1.json pins them.
/// Changing anything here is a new version with a new domain tag, never an edit.
/// </summary>
public static class CacheKeyV1
{
    /// <summary>Domain and version tag of step keys.</summary>
    public const string KeyDomain = "cacheservice/key/v1";

    /// <summary>Domain tag of the state after a layer step (RUN, COPY, ADD).</summary>
    public const string LayerStateDomain = "cacheservice/state/v1/layer";

    /// <summary>Domain tag of the state after a config-only step (ENV, WORKDIR, ...).</summary>
    public const string ConfigStateDomain = "cacheservice/state/v1/config";

    /// <summary>Domain tag of the empty base image, <c>FROM scratch</c>.</summary>
    public const string ScratchDomain = "cacheservice/state/v1/scratch";

    /// <summary>The parent state of the first step after <c>FROM scratch</c>.</summary>
    public static Digest ScratchState { get; } = new Preimage().Field(ScratchDomain).Hash();

    /// <summary>Derives the key of one step.</summary>
    /// <exception cref="InvalidFieldException">A malformed platform or instruction, or a repeated arg name.</exception>
    public static StepKey Compute(StepKeyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var platform = NormalizePlatform(input.Platform);
        var instruction = InstructionNormalizer.Normalize(input.Instruction);
        var args = SortArgs(input.Args);

        var preimage = new Preimage().Field(KeyDomain).Field(input.ParentState.Value).Field(platform).Field(instruction).Count(args.Count);
        foreach (var (name, value) in args)
        {
            preimage.Field(name).Field(value);
        }

        preimage.Field(input.SourcesDigest?.Value ?? string.Empty);
        return new StepKey(preimage.Hash(), instruction, InstructionNormalizer.IsLayerStep(instruction), preimage.ToArray());
    }

    /// <summary>
    /// The state after a step, which is the parent state of the next one. After a layer step it
    /// follows the layer actually produced (OCI ChainID style), so two parents never share a child
    /// key even when their top layers are identical; after a config-only step it follows the key.
    /// </summary>
    public static Digest NextState(Digest parentState, StepKey step, Digest? diffId)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.IsLayerStep)
        {
            var layer = diffId ?? throw new ArgumentException("a layer step moves the state by its diff id", nameof(diffId));
            return new Preimage().Field(LayerStateDomain).Field(parentState.Value).Field(layer.Value).Hash();
        }

        return new Preimage().Field(ConfigStateDomain).Field(parentState.Value).Field(step.Key.Value).Hash();
    }

    /// <summary>Lower-cases and checks <c>os/arch[/variant]</c>.</summary>
    public static string NormalizePlatform(string? platform)
    {
        if (string.IsNullOrEmpty(platform))
        {
            throw new InvalidFieldException("platform", "is required (os/arch[/variant])");
        }

        var normalized = platform.ToLowerInvariant();
        var parts = normalized.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')))
        {
            throw new InvalidFieldException("platform", "must be os/arch[/variant], e.g. linux/amd64");
        }

        return normalized;
    }

    private static List<KeyValuePair<string, string>> SortArgs(IReadOnlyList<KeyValuePair<string, string>> args)
    {
        var sorted = args.OrderBy(a => a.Key, Preimage.Utf8Order).ToList();
        for (var i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].Key == sorted[i - 1].Key)
            {
                throw new InvalidFieldException("args", $"name '{sorted[i].Key}' is given twice");
            }
        }

        foreach (var arg in sorted)
        {
            if (arg.Key.Length == 0)
            {
                throw new InvalidFieldException("args", "a name is empty");
            }
        }

        return sorted;
    }
}
