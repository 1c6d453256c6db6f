using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>What a build is asked to produce, beyond the Dockerfile and its context.</summary>
public sealed record BuildSettings
{
    /// <summary>The stage to build (name or index); default the last stage.</summary>
    public string? Target { get; init; }

    /// <summary><c>--build-arg</c> values; they count only for ARGs the Dockerfile declares.</summary>
    public IReadOnlyDictionary<string, string> BuildArgs { get; init; } = new Dictionary<string, string>();

    /// <summary>The target platform, <c>os/arch[/variant]</c>; default <c>linux/amd64</c>.</summary>
    public string Platform { get; init; } = "linux/amd64";

    /// <summary>
    /// The platform the build runs on, which <c>BUILDPLATFORM</c> and the other <c>BUILD*</c> args
    /// name; default this machine's.
    /// </summary>
    public string BuildPlatform { get; init; } = HostPlatform;

    /// <summary>This machine's platform, e.g. <c>linux/amd64</c>.</summary>
    public static string HostPlatform { get; } = "linux/" + System.Runtime.InteropServices.RuntimeInformation.OSArchitecture switch
    {
        System.Runtime.InteropServices.Architecture.X64 => "amd64",
        System.Runtime.InteropServices.Architecture.Arm64 => "arm64",
        System.Runtime.InteropServices.Architecture.Arm => "arm/v7",
        System.Runtime.InteropServices.Architecture.X86 => "386",
        var other => other.ToString().ToLowerInvariant(),
    };

    /// <summary><c>--base ref=sha256:...</c>: the digest an image reference stands for in this build.</summary>
    public IReadOnlyDictionary<string, Digest> BaseImages { get; init; } = new Dictionary<string, Digest>();
}

/// <summary>The stages a build needs, in Dockerfile order, with every step's key inputs.</summary>
/// <param name="Stages">Only the target stage and the stages it reads from.</param>
/// <param name="Warnings">Things that weaken the keys, e.g. an unpinned base image.</param>
public sealed record BuildPlan(IReadOnlyList<PlannedStage> Stages, IReadOnlyList<string> Warnings);

/// <summary>One stage: where it starts and its steps.</summary>
/// <param name="Index">Position among all stages of the Dockerfile.</param>
/// <param name="Name">The <c>AS</c> name, or the index when it has none.</param>
/// <param name="Platform">The platform its keys use.</param>
/// <param name="Base">The state below its first step.</param>
/// <param name="Steps">Every instruction after its FROM.</param>
/// <param name="From">What its FROM names, variables expanded: an image reference, <c>scratch</c>, or an earlier stage (then <see cref="Base"/> says which).</param>
public sealed record PlannedStage(int Index, string Name, string Platform, StateSource Base, IReadOnlyList<PlannedStep> Steps, string From);

/// <summary>A state known now (<see cref="State"/>) or the final state of an earlier stage (<see cref="Stage"/>).</summary>
public sealed record StateSource(Digest? State, int? Stage)
{
    /// <summary>A known state.</summary>
    public static StateSource Known(Digest state) => new(state, null);

    /// <summary>The final state of stage <paramref name="index"/>.</summary>
    public static StateSource OfStage(int index) => new(null, index);
}

/// <summary>One step with the inputs of its key except the parent state.</summary>
/// <param name="Index">Position in its stage, 0 for the first instruction after FROM.</param>
/// <param name="Node">The parsed instruction.</param>
/// <param name="Args">Build arguments and environment the key counts, with resolved values.</param>
/// <param name="Sources">What the step reads besides its parent: context selections and other stages' states, in order.</param>
public sealed record PlannedStep(int Index, DockerfileNode Node, IReadOnlyList<KeyValuePair<string, string>> Args, IReadOnlyList<StateSource> Sources)
{
    /// <summary>The instruction text the key normalizes (heredoc bodies included).</summary>
    public string Instruction => Node.KeyText;

    /// <summary>True when a source is another stage's final state.</summary>
    public bool DependsOnStage => Sources.Any(s => s.Stage is not null);

    /// <summary>
    /// The sources digest of the key once every source is known (<paramref name="stageStates"/>
    /// gives each stage's final state); null for a step that reads nothing. One source is used as
    /// is; several are combined in order (docs/cache-key.md).
    /// </summary>
    public Digest? SourcesDigest(Func<int, Digest> stageStates)
    {
        ArgumentNullException.ThrowIfNull(stageStates);
        var digests = Sources.Select(s => s.State ?? stageStates(s.Stage!.Value)).ToList();
        return digests.Count switch
        {
            0 => null,
            1 => digests[0],
            _ => digests.Aggregate(new Preimage().Field(Dockerfile.SourcesDigest.CombinedDomain).Count(digests.Count), (p, d) => p.Field(d.Value)).Hash(),
        };
    }
}
