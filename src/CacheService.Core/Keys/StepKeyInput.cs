namespace CacheService.Core.Keys;

/// <summary>Everything one step's cache key depends on (docs/cache-key.md).</summary>
/// <param name="ParentState">State below the step: the pinned base image or the previous step's state.</param>
/// <param name="Platform"><c>os/arch[/variant]</c>, e.g. <c>linux/amd64</c>.</param>
/// <param name="Instruction">The instruction as written; it is normalized before hashing.</param>
/// <param name="Args">Build arguments and environment the step can see, with resolved values. Names are unique; order is irrelevant.</param>
/// <param name="SourcesDigest">Merkle digest of the sources a COPY/ADD/RUN --mount reads, or null.</param>
public sealed record StepKeyInput(
    Digest ParentState,
    string Platform,
    string Instruction,
    IReadOnlyList<KeyValuePair<string, string>> Args,
    Digest? SourcesDigest);

/// <summary>The result of deriving a key, with the components that went into it.</summary>
/// <param name="Key">The cache key.</param>
/// <param name="NormalizedInstruction">The instruction as it entered the key.</param>
/// <param name="Kind">What the step does to the state: a layer, a config step that moves it, or metadata that leaves it.</param>
/// <param name="Preimage">The exact bytes that were hashed.</param>
public sealed record StepKey(Digest Key, string NormalizedInstruction, StepKind Kind, byte[] Preimage)
{
    /// <summary>True for RUN, COPY and ADD.</summary>
    public bool IsLayerStep => Kind == StepKind.Layer;
}

/// <summary>How a step moves the chain state (docs/cache-key.md, "Parent state").</summary>
public enum StepKind
{
    /// <summary>RUN, COPY, ADD: the state follows the layer produced.</summary>
    Layer,

    /// <summary>WORKDIR, VOLUME and unknown keywords: the state follows the step's key.</summary>
    Config,

    /// <summary>ENV, ARG, USER, SHELL, LABEL, CMD and the other settings later steps observe only through their args, if at all: the state stays.</summary>
    Metadata,
}
