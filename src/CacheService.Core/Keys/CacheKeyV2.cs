namespace CacheService.Core.Keys;

/// <summary>
/// Version 2 of the cache key derivation: the one pure function every component (server, client
/// SDK, CLI) uses. docs/cache-key.md specifies the bytes; testdata/cache-keys/v2.json pins them.
/// Changing anything here is a new version with new domain tags, never an edit: v1 keys (the
/// same function with "v1" tags, config steps always moving the state) can never equal v2 ones.
/// </summary>
public static class CacheKeyV2
{
    /// <summary>Domain and version tag of step keys.</summary>
    public const string KeyDomain = "cacheservice/key/v2";

    /// <summary>Domain tag of the state after a layer step (RUN, COPY, ADD).</summary>
    public const string LayerStateDomain = "cacheservice/state/v2/layer";

    /// <summary>Domain tag of the state after a config step that moves it (WORKDIR, VOLUME).</summary>
    public const string ConfigStateDomain = "cacheservice/state/v2/config";

    /// <summary>Domain tag of the empty base image, <c>FROM scratch</c>.</summary>
    public const string ScratchDomain = "cacheservice/state/v2/scratch";

    /// <summary>Domain tag of a pinned base image on one platform.</summary>
    public const string ImageDomain = "cacheservice/state/v2/image";

    /// <summary>
    /// The arg that carries a step's user (the last <c>USER</c>), which RUN and WORKDIR observe. No
    /// ARG or ENV name contains <c>=</c>, so no variable can stand in for it.
    /// </summary>
    public const string UserArg = "=user";

    /// <summary>The arg that carries the shell a RUN in shell form runs under (the last <c>SHELL</c>).</summary>
    public const string ShellArg = "=shell";

    /// <summary>Keywords of file operations: their keys leave the platform out, as BuildKit's file ops do.</summary>
    public static readonly IReadOnlySet<string> FileKeywords = new HashSet<string>(StringComparer.Ordinal) { "COPY", "ADD", "WORKDIR" };

    /// <summary>
    /// Config keywords that leave the state where it was: no later step observes them, or a later
    /// step observes them only through its own args (ENV, ARG, USER, SHELL). Every other config
    /// keyword (WORKDIR, VOLUME, anything unknown) moves the state by its key.
    /// </summary>
    public static readonly IReadOnlySet<string> MetadataKeywords = new HashSet<string>(StringComparer.Ordinal)
    {
        "ENV", "ARG", "USER", "SHELL", "LABEL", "EXPOSE", "CMD", "ENTRYPOINT", "STOPSIGNAL", "HEALTHCHECK", "MAINTAINER", "ONBUILD",
    };

    /// <summary>The parent state of the first step after <c>FROM scratch</c>, the same on every platform.</summary>
    public static Digest ScratchState { get; } = new Preimage().Field(ScratchDomain).Hash();

    /// <summary>
    /// The parent state of the first step after a pinned image: its digest on one platform. An
    /// index digest names every platform's image, so the platform is part of the state.
    /// </summary>
    /// <exception cref="InvalidFieldException">A malformed platform.</exception>
    public static Digest ImageState(Digest image, string platform) =>
        new Preimage().Field(ImageDomain).Field(image.Value).Field(NormalizePlatform(platform)).Hash();

    /// <summary>Derives the key of one step.</summary>
    /// <exception cref="InvalidFieldException">A malformed platform or instruction, or a repeated arg name.</exception>
    public static StepKey Compute(StepKeyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var platform = NormalizePlatform(input.Platform);
        var instruction = InstructionNormalizer.Normalize(input.Instruction);
        var args = SortArgs(input.Args);
        var keyword = InstructionNormalizer.Keyword(instruction);

        var preimage = new Preimage().Field(KeyDomain).Field(input.ParentState.Value)
            .Field(FileKeywords.Contains(keyword) ? string.Empty : platform).Field(instruction).Count(args.Count);
        foreach (var (name, value) in args)
        {
            preimage.Field(name).Field(value);
        }

        preimage.Field(input.SourcesDigest?.Value ?? string.Empty);
        return new StepKey(preimage.Hash(), instruction, Kind(keyword), preimage.ToArray());
    }

    /// <summary>
    /// The state after a step, which is the parent state of the next one. After a layer step it
    /// follows the layer actually produced (OCI ChainID style), so two parents never share a child
    /// key even when their top layers are identical; after a config step that moves it, it follows
    /// the key; after a metadata step it stays.
    /// </summary>
    public static Digest NextState(Digest parentState, StepKey step, Digest? diffId)
    {
        ArgumentNullException.ThrowIfNull(step);
        return step.Kind switch
        {
            StepKind.Layer => new Preimage().Field(LayerStateDomain).Field(parentState.Value)
                .Field((diffId ?? throw new ArgumentException("a layer step moves the state by its diff id", nameof(diffId))).Value).Hash(),
            StepKind.Config => new Preimage().Field(ConfigStateDomain).Field(parentState.Value).Field(step.Key.Value).Hash(),
            _ => parentState,
        };
    }

    /// <summary>
    /// Checks <c>os/arch[/variant]</c> and brings it to one spelling per platform, as containerd's
    /// <c>platforms.Normalize</c> does: lower case, <c>aarch64</c> and <c>arm64/v8</c> are
    /// <c>arm64</c>, <c>x86_64</c> is <c>amd64</c>, <c>arm</c> alone is <c>arm/v7</c>, and so on.
    /// </summary>
    /// <exception cref="InvalidFieldException">It is missing or not <c>os/arch[/variant]</c>.</exception>
    public static string NormalizePlatform(string? platform)
    {
        if (string.IsNullOrEmpty(platform))
        {
            throw new InvalidFieldException("platform", "is required (os/arch[/variant])");
        }

        var parts = platform.ToLowerInvariant().Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')))
        {
            throw new InvalidFieldException("platform", "must be os/arch[/variant], e.g. linux/amd64");
        }

        var os = parts[0] == "macos" ? "darwin" : parts[0];
        var (arch, variant) = NormalizeArch(parts[1], parts.Length > 2 ? parts[2] : string.Empty);
        return variant.Length == 0 ? $"{os}/{arch}" : $"{os}/{arch}/{variant}";
    }

    private static (string Arch, string Variant) NormalizeArch(string arch, string variant) => arch switch
    {
        "i386" => ("386", string.Empty),
        "x86_64" or "x86-64" or "amd64" => ("amd64", variant == "v1" ? string.Empty : variant),
        "aarch64" or "arm64" => ("arm64", variant switch
        {
            "8" or "v8" or "v8.0" => string.Empty,
            "9" or "9.0" or "v9.0" => "v9",
            _ => variant,
        }),
        "armhf" => ("arm", "v7"),
        "armel" => ("arm", "v6"),
        "arm" => ("arm", variant switch
        {
            "" or "7" => "v7",
            "5" or "6" or "8" => "v" + variant,
            _ => variant,
        }),
        _ => (arch, variant),
    };

    private static StepKind Kind(string keyword) =>
        InstructionNormalizer.LayerKeywords.Contains(keyword) ? StepKind.Layer
        : MetadataKeywords.Contains(keyword) ? StepKind.Metadata
        : StepKind.Config;

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
