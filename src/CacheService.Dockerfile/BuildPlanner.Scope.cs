using CacheService.Core.Keys;

namespace CacheService.Dockerfile;

/// <summary>The per-stage half of the planner: what one stage has declared, and its steps.</summary>
public sealed partial class BuildPlanner
{
    /// <summary>The ARGs, ENV, USER and SHELL one stage has declared so far; its platform.</summary>
    private sealed class Scope(BuildPlanner planner, string platform)
    {
        private readonly Dictionary<string, string?> _args = new(StringComparer.Ordinal);
        private readonly Dictionary<string, string> _env = new(StringComparer.Ordinal);

        // The settings RUN (and, for the user, WORKDIR) observes; they leave the state alone, so
        // they enter those steps' keys as args (docs/cache-key.md). Null until a USER or SHELL.
        private string? _user;
        private string? _shell;

        private char Escape => planner._dockerfile.Escape;

        // What a stage built on `parent` starts with: its ENV, the ARGs it declared with their values, its USER and SHELL.
        public void Inherit(Scope parent)
        {
            (_user, _shell) = (parent._user, parent._shell);
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
                    "user" => User(index, node),
                    "shell" => Shell(index, node),
                    "run" => new PlannedStep(index, node, [.. Visible(), .. Settings(user: true, shell: true)], Mounts(node, stage)),
                    "workdir" => new PlannedStep(index, node, [.. Referenced(node), .. Settings(user: true, shell: false)], []),
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

        private PlannedStep User(int index, DockerfileNode node)
        {
            var referenced = Referenced(node);
            _user = Expand(string.Join(' ', node.Args));
            return new PlannedStep(index, node, referenced, []);
        }

        private PlannedStep Shell(int index, DockerfileNode node)
        {
            _shell = InstructionNormalizer.Normalize(node.KeyText, Escape);
            return new PlannedStep(index, node, Referenced(node), []);
        }

        private IEnumerable<KeyValuePair<string, string>> Settings(bool user, bool shell)
        {
            if (user && _user is not null)
            {
                yield return KeyValuePair.Create(CacheKeyV2.UserArg, _user);
            }

            if (shell && _shell is not null)
            {
                yield return KeyValuePair.Create(CacheKeyV2.ShellArg, _shell);
            }
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
                return [planner.Source(Expand(from), stage, platform, byIndex: true)];
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
                    ? planner.Source(from, stage, platform, byIndex: true)
                    : StateSource.Known(planner._context.Digest([source])));
            }

            return sources;
        }
    }
}
