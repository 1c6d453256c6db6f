// Over 300 lines for now: the planner and its per-stage Scope share private state (stages, globals,
// warnings). The rest of issue 17 (config-only steps, platforms) splits it by instruction.
using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>
/// Applies the build semantics that decide cache keys to a parsed Dockerfile: stages and the
/// target, FROM, ARG scoping, ENV, and what COPY, ADD and <c>RUN --mount=type=bind</c> read.
/// </summary>
/// <remarks>
/// <para>What a step's key counts, besides its parent state and instruction text:</para>
/// <list type="bullet">
/// <item>RUN: every ARG declared in the stage that has a value, and every ENV set in the stage,
/// because the shell sees them all (BuildKit: an ARG change misses on the first RUN after it).</item>
/// <item>Any other step: only the variables its text names, with their values. An ARG line
/// itself counts only its text, so a new <c>--build-arg</c> value misses at its first use, not
/// at its declaration, and a <c>--build-arg</c> no ARG declares changes nothing.</item>
/// <item>COPY and ADD: the sources digest of what they select from the context after
/// <c>.dockerignore</c>; with <c>--from</c> the final state of that stage or image instead.</item>
/// <item>RUN with <c>--mount=type=bind</c>: the selected context path or stage, per mount.</item>
/// </list>
/// <para>An ARG before the first FROM is global: FROM lines see it; a stage sees it only after
/// declaring it again (<c>ARG NAME</c>), as in BuildKit. A stage built <c>FROM</c> another stage
/// starts with that stage's ENV and declared ARGs (BuildKit: "automatically inherited"), and its
/// first steps are that stage's ONBUILD triggers, in order, keyed as the instructions they carry.
/// A number in <c>COPY --from</c> or a mount's <c>from=</c> names a stage by position when no stage has
/// that name.</para>
/// </remarks>
public sealed class BuildPlanner
{
    private static readonly string[] PlatformArgs = ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

    private readonly ParsedDockerfile _dockerfile;
    private readonly BuildContext _context;
    private readonly BuildSettings _settings;
    private readonly string _platform;
    private readonly Dictionary<string, string?> _globals = new(StringComparer.Ordinal);
    private readonly List<(DockerfileNode From, List<DockerfileNode> Body, string Name)> _stages = [];
    private readonly Dictionary<int, PlannedStage> _planned = [];
    private readonly Dictionary<int, Scope> _scopes = [];
    private readonly List<string> _warnings = [];

    private BuildPlanner(ParsedDockerfile dockerfile, BuildContext context, BuildSettings settings)
    {
        _dockerfile = dockerfile;
        _context = context;
        _settings = settings;
        _platform = CacheKeyV1.NormalizePlatform(settings.Platform);
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
        var platformFlag = Flag(from, "platform");
        var platform = platformFlag is null ? _platform : CacheKeyV1.NormalizePlatform(Variables.Expand(platformFlag, GlobalLookup, _dockerfile.Escape));
        var stageBase = Source(image, index);

        // A stage built on another inherits its ENV and the ARGs it declared, and runs its ONBUILD
        // triggers before its own instructions (BuildKit, for stages as for images): plan that one first.
        var scope = new Scope(this);
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

    // A FROM image, --from value or mount from= (`byIndex`: a number may name a stage by position): an earlier stage, or an image.
    private StateSource Source(string reference, int stage, bool byIndex = false) =>
        StageIndex(reference, stage, byIndex) is { } other
            ? StateSource.OfStage(other)
            : StateSource.Known(ImageReference.State(reference, _settings.BaseImages, _warnings));

    private string? GlobalLookup(string name) =>
        _globals.TryGetValue(name, out var value) ? value : AutomaticArg(name);

    private string? AutomaticArg(string name)
    {
        var parts = _platform.Split('/');
        return name switch
        {
            "TARGETPLATFORM" or "BUILDPLATFORM" => _platform,
            "TARGETOS" or "BUILDOS" => parts[0],
            "TARGETARCH" or "BUILDARCH" => parts[1],
            "TARGETVARIANT" or "BUILDVARIANT" => parts.Length > 2 ? parts[2] : string.Empty,
            _ => null,
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

    /// <summary>The ARGs and ENV one stage has declared so far.</summary>
    private sealed class Scope(BuildPlanner planner)
    {
        private readonly Dictionary<string, string?> _args = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);

        private char Escape => planner._dockerfile.Escape;

        // What a stage built on `parent` starts with: its ENV, and the ARGs it declared with their values.
        public void Inherit(Scope parent)
        {
            foreach (var (name, value) in parent._args)
            {
                _args[name] = value;
            }

            foreach (var (name, value) in parent._env)
            {
                _env[name] = value;
            }
        }

        public PlannedStep Step(int index, DockerfileNode node, int stage)
        {
            try
            {
                return node.Keyword switch
                {
                    "arg" => Arg(index, node),
                    "env" => Env(index, node),
                    "run" => new PlannedStep(index, node, Visible(), Mounts(node, stage)),
                    "copy" or "add" => new PlannedStep(index, node, Referenced(node), CopySources(node, stage)),
                    _ => new PlannedStep(index, node, Referenced(node), []),
                };
            }
            catch (DockerfileSyntaxException e) when (e.Line == 0)
            {
                throw new DockerfileSyntaxException(e.Message, node.StartLine);
            }
        }

        private string? Lookup(string name) =>
            _env.TryGetValue(name, out var env) ? env : _args.GetValueOrDefault(name);

        private string Expand(string word) => Variables.Expand(word, Lookup, Escape);

        private PlannedStep Arg(int index, DockerfileNode node)
        {
            var referenced = Referenced(node);
            foreach (var word in node.Args)
            {
                var (name, value) = planner.Declaration(word, Lookup);
                _args[name] = planner._settings.BuildArgs.TryGetValue(name, out var given) ? given
                    : value ?? (planner._globals.TryGetValue(name, out var global) ? global : planner.AutomaticArg(name));
            }

            // The value is not part of this step's key: it counts where it is used.
            return new PlannedStep(index, node, referenced, []);
        }

        private PlannedStep Env(int index, DockerfileNode node)
        {
            var referenced = Referenced(node);
            for (var i = 0; i + 1 < node.Args.Count; i += 3)
            {
                _env[node.Args[i]] = Expand(node.Args[i + 1]);
            }

            return new PlannedStep(index, node, referenced, []);
        }

        // Everything a RUN's shell sees; ENV wins over an ARG of the same name.
        private List<KeyValuePair<string, string>> Visible()
        {
            var visible = _args.Where(a => a.Value is not null && !_env.ContainsKey(a.Key)).Select(a => KeyValuePair.Create(a.Key, a.Value!));
            return [.. visible.Concat(_env)];
        }

        private List<KeyValuePair<string, string>> Referenced(DockerfileNode node) =>
            [.. Variables.ReferencedNames(node.KeyText).Select(n => (Name: n, Value: Lookup(n))).Where(v => v.Value is not null).Select(v => KeyValuePair.Create(v.Name, v.Value!))];

        private List<StateSource> CopySources(DockerfileNode node, int stage)
        {
            if (node.Args.Count < 2)
            {
                throw new DockerfileSyntaxException($"{node.Keyword.ToUpperInvariant()} requires at least two arguments: sources and a destination", 0);
            }

            if (Flag(node, "from") is { } from)
            {
                return [planner.Source(Expand(from), stage, byIndex: true)];
            }

            var heredocs = node.Heredocs?.Select(h => h.Name).ToHashSet(StringComparer.Ordinal) ?? [];
            var sources = new List<string>();
            foreach (var word in node.Args.Take(node.Args.Count - 1))
            {
                var source = node.Json ? word : Expand(word);
                if (heredocs.Count > 0 && source.StartsWith("<<", StringComparison.Ordinal))
                {
                    continue; // the body is in the instruction text
                }

                if (node.Keyword == "add" && IsRemote(source))
                {
                    if (Flag(node, "checksum") is null)
                    {
                        planner._warnings.Add($"line {node.StartLine}: ADD {source} is keyed by its URL, not its content; pin it with --checksum=sha256:...");
                    }

                    continue;
                }

                sources.Add(source);
            }

            if (sources.Count == 0)
            {
                return [];
            }

            var chown = Flag(node, "chown") is { } owner ? BuildContext.NumericOwner(Expand(owner)) : null;
            var chmod = Flag(node, "chmod") is { } mode ? BuildContext.OctalMode(Expand(mode)) : null;
            return [StateSource.Known(planner._context.Digest(sources, chmod, chown))];
        }

        private static bool IsRemote(string source) =>
            source.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("https://", StringComparison.OrdinalIgnoreCase) || source.StartsWith("git@", StringComparison.Ordinal);

        // RUN --mount=type=bind[,from=stage|image][,source=path]: what each bind mount shows.
        // Cache, tmpfs, secret and ssh mounts hold no build input the key could check.
        private List<StateSource> Mounts(DockerfileNode node, int stage)
        {
            var sources = new List<StateSource>();
            foreach (var flag in node.Flags.Where(f => f.StartsWith("--mount=", StringComparison.Ordinal)))
            {
                var fields = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var field in flag["--mount=".Length..].Split(',').Select(f => f.Split('=', 2)))
                {
                    fields[field[0].ToLowerInvariant()] = field.Length > 1 ? Expand(field[1]) : "true";
                }

                if (fields.GetValueOrDefault("type", "bind") != "bind")
                {
                    continue;
                }

                var source = fields.GetValueOrDefault("source") ?? fields.GetValueOrDefault("src") ?? ".";
                sources.Add(fields.TryGetValue("from", out var from)
                    ? planner.Source(from, stage, byIndex: true)
                    : StateSource.Known(planner._context.Digest([source])));
            }

            return sources;
        }
    }
}
