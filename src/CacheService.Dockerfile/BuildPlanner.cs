using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>
/// Applies the build semantics that decide cache keys to a parsed Dockerfile: stages and the
/// target, FROM, ARG scoping, ENV, and what COPY, ADD and <c>RUN --mount=type=bind</c> read.
/// </summary>
/// <remarks>
/// <para>What a step's key counts, besides its parent state and instruction text
/// (docs/cache-key.md, "What each step counts"):</para>
/// <list type="bullet">
/// <item>RUN: every ARG declared in the stage that has a value, every ENV set in the stage, and the
/// stage's USER and SHELL (as <see cref="CacheKeyV2.UserArg"/> and <see cref="CacheKeyV2.ShellArg"/>),
/// because the shell sees them all; with <c>--mount=type=bind</c>, the context selection or stage each shows.</item>
/// <item>WORKDIR: the variables its text names and the USER, which makes the directory.</item>
/// <item>Any other step: only the variables its text names, with their values. An ARG line
/// itself counts only its text, so a new <c>--build-arg</c> value misses at its first use, not
/// at its declaration, and a <c>--build-arg</c> no ARG declares changes nothing.</item>
/// <item>COPY and ADD: the sources digest of what they select from the context after
/// <c>.dockerignore</c>; with <c>--from</c> the final state of that stage or image instead.</item>
/// </list>
/// <para>ENV, ARG, USER, SHELL, LABEL and the other metadata steps leave the state alone
/// (<see cref="CacheKeyV2.NextState"/>), so a later step misses only where it observes them.</para>
/// <para>An ARG before the first FROM is global: FROM lines see it; a stage sees it only after
/// declaring it again (<c>ARG NAME</c>), as in BuildKit. A stage built <c>FROM</c> another stage
/// starts with that stage's ENV, declared ARGs, USER and SHELL (BuildKit: "automatically
/// inherited"), and its first steps are that stage's ONBUILD triggers, in order, keyed as the
/// instructions they carry. A number in <c>COPY --from</c> or a mount's <c>from=</c> names a stage
/// by position when no stage has that name. <c>TARGET*</c> args follow the target platform,
/// <c>BUILD*</c> args the platform the build runs on.</para>
/// </remarks>
public sealed partial class BuildPlanner
{
    /// <summary>
    /// Most stages one Dockerfile may have. Stages are planned depth first, one frame per stage a
    /// stage is built on, so this also bounds that depth.
    /// </summary>
    public const int MaxStages = 500;

    private static readonly string[] PlatformArgs = ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

    private readonly ParsedDockerfile _dockerfile;
    private readonly BuildContext _context;
    private readonly BuildSettings _settings;
    private readonly string _platform;
    private readonly string _buildPlatform;
    private readonly Dictionary<string, string?> _globals = new(StringComparer.Ordinal);
    private readonly List<(DockerfileNode From, List<DockerfileNode> Body, string Name)> _stages = [];
    private readonly Dictionary<int, PlannedStage> _planned = [];
    private readonly Dictionary<int, Scope> _scopes = [];
    private readonly List<string> _warnings = [];
    private readonly HashSet<string> _images = new(StringComparer.Ordinal);

    private BuildPlanner(ParsedDockerfile dockerfile, BuildContext context, BuildSettings settings)
    {
        _dockerfile = dockerfile;
        _context = context;
        _settings = settings;
        _platform = CacheKeyV2.NormalizePlatform(settings.Platform);
        _buildPlatform = CacheKeyV2.NormalizePlatform(settings.BuildPlatform);
    }

    /// <summary>Plans the target stage of <paramref name="dockerfile"/> and the stages it reads from.</summary>
    /// <exception cref="InvalidFieldException">An unknown target, a missing source, a malformed flag or digest.</exception>
    /// <exception cref="DockerfileSyntaxException">An instruction the build cannot run.</exception>
    public static BuildPlan Plan(ParsedDockerfile dockerfile, BuildContext context, BuildSettings settings)
    {
        ArgumentNullException.ThrowIfNull(dockerfile);
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(settings);
        var planner = new BuildPlanner(dockerfile, context, settings);
        planner.SplitStages();
        planner.PlanStage(planner.TargetIndex());
        planner.WarnOfUnusedBases();
        return new BuildPlan([.. planner._planned.OrderBy(p => p.Key).Select(p => p.Value)], planner._warnings);
    }

    private void SplitStages()
    {
        foreach (var node in _dockerfile.Instructions)
        {
            if (node.Keyword == "from")
            {
                var args = node.Args;
                var named = args.Count == 3 && args[1].Equals("as", StringComparison.OrdinalIgnoreCase);
                if (args.Count == 0 || (args.Count != 1 && !named))
                {
                    throw new DockerfileSyntaxException("FROM takes an image and optionally AS name", node.StartLine);
                }

                var name = named ? args[2].ToLowerInvariant() : _stages.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if (named && _stages.Any(s => s.Name == name))
                {
                    throw new DockerfileSyntaxException($"duplicate stage name '{name}'", node.StartLine);
                }

                if (_stages.Count == MaxStages)
                {
                    throw new DockerfileSyntaxException($"more than {MaxStages} stages", node.StartLine);
                }

                _stages.Add((node, [], name));
            }
            else if (_stages.Count > 0)
            {
                _stages[^1].Body.Add(node);
            }
            else if (node.Keyword == "arg")
            {
                foreach (var word in node.Args)
                {
                    var (name, value) = Declaration(word, GlobalLookup);
                    _globals[name] = _settings.BuildArgs.TryGetValue(name, out var given) ? given : value;
                }
            }
            else
            {
                throw new DockerfileSyntaxException($"{node.Keyword.ToUpperInvariant()} before the first FROM: only ARG may come first", node.StartLine);
            }
        }

        if (_stages.Count == 0)
        {
            throw new DockerfileSyntaxException("no FROM instruction: nothing to build", 0);
        }
    }

    private int TargetIndex()
    {
        if (_settings.Target is not { } target)
        {
            return _stages.Count - 1;
        }

        var index = StageIndex(target.ToLowerInvariant(), _stages.Count);
        return index ?? throw new InvalidFieldException("target", $"stage '{target}' is not in the Dockerfile (stages: {string.Join(", ", _stages.Select(s => s.Name))})");
    }

    // A stage named by name among the first `before` stages, or, with `byIndex` (COPY --from and
    // mount from=, as in BuildKit), by its position when no stage has that name; null when it is an image.
    private int? StageIndex(string reference, int before, bool byIndex = false)
    {
        var lower = reference.ToLowerInvariant();
        for (var i = 0; i < before; i++)
        {
            if (_stages[i].Name == lower)
            {
                return i;
            }
        }

        return byIndex && reference.Length is > 0 and < 10 && reference.All(char.IsAsciiDigit) && int.Parse(reference, System.Globalization.CultureInfo.InvariantCulture) is var index && index < before
            ? index
            : null;
    }

    private void PlanStage(int index)
    {
        if (_planned.ContainsKey(index))
        {
            return;
        }

        var (from, body, name) = _stages[index];
        var image = Variables.Expand(from.Args[0], GlobalLookup, _dockerfile.Escape);
        if (image.Length == 0)
        {
            throw new DockerfileSyntaxException($"FROM {from.Args[0]} names no image: it expands to nothing", from.StartLine);
        }

        var platformFlag = Flag(from, "platform");
        var platform = platformFlag is null ? _platform : CacheKeyV2.NormalizePlatform(Variables.Expand(platformFlag, GlobalLookup, _dockerfile.Escape));
        var stageBase = Source(image, index, platform);

        // A stage built on another inherits its ENV, the ARGs it declared, its USER and SHELL, and
        // runs its ONBUILD triggers before its own instructions (BuildKit, for stages as for
        // images): plan that one first.
        var scope = new Scope(this, platform);
        var steps = new List<PlannedStep>();
        if (stageBase.Stage is { } parent)
        {
            PlanStage(parent);
            scope.Inherit(_scopes[parent]);
            foreach (var trigger in _stages[parent].Body.Where(n => n.Keyword == "onbuild").Select(n => n.Child))
            {
                steps.Add(scope.Step(steps.Count, trigger ?? throw new DockerfileSyntaxException("ONBUILD names no instruction", 0), index));
            }
        }

        foreach (var node in body)
        {
            steps.Add(scope.Step(steps.Count, node, index));
        }

        _planned[index] = new PlannedStage(index, name, platform, stageBase, steps, image);
        _scopes[index] = scope;
        foreach (var dependency in steps.SelectMany(s => s.Sources).Append(stageBase).Where(s => s.Stage is not null))
        {
            PlanStage(dependency.Stage!.Value);
        }
    }

    // A FROM image, --from value or mount from= (`byIndex`: a number may name a stage by position):
    // an earlier stage, or an image on `platform`.
    private StateSource Source(string reference, int stage, string platform, bool byIndex = false)
    {
        if (reference.Length == 0)
        {
            throw new DockerfileSyntaxException("--from (or a mount's from=) names no stage or image: it is empty", 0);
        }

        if (StageIndex(reference, stage, byIndex) is { } other)
        {
            return StateSource.OfStage(other);
        }

        _images.Add(ImageReference.Normalize(reference));
        return StateSource.Known(ImageReference.State(reference, platform, _settings.BaseImages, _warnings));
    }

    // A --base that no planned FROM, COPY --from or mount names is a typo or a stale script: say so.
    private void WarnOfUnusedBases()
    {
        foreach (var given in _settings.BaseImages.Keys.Where(g => !_images.Contains(ImageReference.Normalize(g))))
        {
            _warnings.Add($"--base {given} is not used: no FROM, COPY --from or mount from= of this build names it");
        }
    }

    private string? GlobalLookup(string name) =>
        _globals.TryGetValue(name, out var value) ? value : AutomaticArg(name);

    // TARGET* follow --platform, BUILD* the platform the build runs on.
    private string? AutomaticArg(string name)
    {
        if (!PlatformArgs.Contains(name))
        {
            return null;
        }

        var platform = name.StartsWith("TARGET", StringComparison.Ordinal) ? _platform : _buildPlatform;
        var parts = platform.Split('/');
        return name[(name.StartsWith('T') ? "TARGET".Length : "BUILD".Length)..] switch
        {
            "PLATFORM" => platform,
            "OS" => parts[0],
            "ARCH" => parts[1],
            _ => parts.Length > 2 ? parts[2] : string.Empty,
        };
    }

    private static string? Flag(DockerfileNode node, string name)
    {
        string? value = null;
        foreach (var flag in node.Flags)
        {
            if (flag.StartsWith("--" + name + "=", StringComparison.Ordinal))
            {
                value = flag[(name.Length + 3)..];
            }
        }

        return value;
    }

    private (string Name, string? Value) Declaration(string word, Func<string, string?> lookup)
    {
        var at = word.IndexOf('=', StringComparison.Ordinal);
        var name = at < 0 ? word : word[..at];
        if (name.Length == 0)
        {
            throw new DockerfileSyntaxException($"ARG names nothing: '{word}'", 0);
        }

        return (name, at < 0 ? null : Variables.Expand(word[(at + 1)..], lookup, _dockerfile.Escape));
    }
}
