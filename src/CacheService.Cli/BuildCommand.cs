using System.Formats.Tar;
using System.Text.Json;
using CacheService.Build;

namespace CacheService.Cli;

/// <summary>
/// <c>layercache build [CONTEXT]</c>: builds a Dockerfile through the cache with buildah, and puts
/// the image in buildah's storage (<c>-t</c>) or in an OCI layout or archive (<c>--output</c>).
/// </summary>
internal static class BuildCommand
{
    public static async Task<int> RunAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var target = LayercacheCli.Target(args, console);
        var contextDir = args.Positional(0) ?? args.Value("--context") ?? ".";
        var output = Output(args.Value("--output"));
        var json = args.Has("--json");
        var (dockerfile, plan, context, settings) = await PlanCommands.PlanDockerfileAsync(args, contextDir, console, cancellationToken);
        var tlsVerify = args.Value("--tls-verify") is not { } verify || (bool.TryParse(verify, out var parsed) ? parsed : throw new UsageException("--tls-verify takes true or false"));
        var buildah = new Buildah(new BuildahStorage(args.Value("--root"), args.Value("--runroot"), args.Value("--storage-driver"), tlsVerify));

        // Lower case: buildah takes the layout's path for a repository name, which must be.
        var work = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "layercache-build-" + Guid.NewGuid().ToString("N"))).FullName;
        try
        {
            using var client = LayercacheCli.Connect(target);
            var progress = new ConsoleProgress(console, json ? console.Error : console.Out);
            var cache = new CacheSession(client, target.Namespace, target.Fallbacks, progress);
            var result = await new ImageBuilder(buildah, cache, progress, console.Time).BuildAsync(dockerfile, plan, context, settings, work, cancellationToken);

            if (args.Value("--tag") is { } tag)
            {
                await buildah.LoadAsync(result.Layout.Reference(ImageBuilder.ImageName), tag, cancellationToken);
            }

            if (output is { } destination)
            {
                await ExportAsync(result.Layout, destination.Kind, destination.Path, destination.Name, cancellationToken);
            }

            if (json)
            {
                await WriteJsonAsync(console, result, args.Value("--tag"));
            }
            else
            {
                await console.Out.WriteLineAsync(Summary(result));
                await console.Out.WriteLineAsync($"image {result.ManifestDigest}" + (args.Value("--tag") is { } t ? $" tagged {t}" : string.Empty));
            }

            return LayercacheCli.Ok;
        }
        catch (StepFailedException e)
        {
            await console.Error.WriteLineAsync($"layercache build: {e.Message}; nothing was cached for it");
            return LayercacheCli.Failed;
        }
        catch (BuildahException e)
        {
            await console.Error.WriteLineAsync($"layercache build: {e.Message}\n{e.Output}");
            return LayercacheCli.Failed;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    // --output oci:DIR[:NAME] or oci-archive:FILE[:NAME]; the name defaults to "latest".
    private static (string Kind, string Path, string Name)? Output(string? value)
    {
        if (value is null)
        {
            return null;
        }

        var colon = value.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? string.Empty : value[..colon];
        if (kind is not ("oci" or "oci-archive") || colon == value.Length - 1)
        {
            throw new UsageException($"--output takes oci:DIR or oci-archive:FILE, got '{value}'");
        }

        var rest = value[(colon + 1)..];
        var named = rest.LastIndexOf(':');
        return named > 0 ? (kind, rest[..named], rest[(named + 1)..]) : (kind, rest, "latest");
    }

    private static async Task ExportAsync(OciLayout layout, string kind, string path, string name, CancellationToken cancellationToken)
    {
        if (kind == "oci")
        {
            layout.ExportImage(ImageBuilder.ImageName, path, name);
            return;
        }

        var staging = Directory.CreateTempSubdirectory("layercache-archive-").FullName;
        try
        {
            layout.ExportImage(ImageBuilder.ImageName, staging, name);
            await TarFile.CreateFromDirectoryAsync(staging, path + ".partial", includeBaseDirectory: false, cancellationToken);
            File.Move(path + ".partial", path, overwrite: true);
        }
        finally
        {
            Directory.Delete(staging, recursive: true);
        }
    }

    // Counts layer steps only: a config step (ENV, WORKDIR, ...) is neither taken from the cache nor built.
    private static string Summary(BuildResult result)
    {
        var cached = result.Steps.Where(s => s.Outcome == StepOutcome.Cached).ToList();
        var built = result.Steps.Where(s => s.Outcome == StepOutcome.Built).ToList();
        return $"{cached.Count} of {cached.Count + built.Count} layer steps from the cache, {cached.Sum(s => s.Elapsed.TotalSeconds):0.0} s; " +
            $"built {built.Count} in {built.Sum(s => s.Elapsed.TotalSeconds):0.0} s (total {result.Elapsed.TotalSeconds:0.0} s)";
    }

    private static Task WriteJsonAsync(CliConsole console, BuildResult result, string? tag) =>
        CacheService.Cli.Output.WriteJsonAsync(console.Out, writer =>
        {
            writer.WriteNumber("cachedSteps", result.Steps.Count(s => s.Outcome == StepOutcome.Cached));
            writer.WriteNumber("builtSteps", result.Steps.Count(s => s.Outcome == StepOutcome.Built));
            writer.WriteStartArray("steps");
            foreach (var step in result.Steps)
            {
                writer.WriteStartObject();
                writer.WriteString("stage", step.Stage.Name);
                writer.WriteNumber("index", step.Step.Index);
                writer.WriteString("instruction", step.Step.Node.Original.Trim());
                writer.WriteString("key", step.Key.Value);
                writer.WriteString("outcome", step.Outcome.ToString().ToLowerInvariant());
                WriteLayer(writer, step.Layer);
                writer.WriteNumber("seconds", Math.Round(step.Elapsed.TotalSeconds, 3));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteString("manifestDigest", result.ManifestDigest.Value);
            writer.WriteNumber("seconds", Math.Round(result.Elapsed.TotalSeconds, 3));
            if (tag is not null)
            {
                writer.WriteString("tag", tag);
            }
        });

    private static void WriteLayer(Utf8JsonWriter writer, ImageLayer? layer)
    {
        if (layer is null)
        {
            writer.WriteNull("layer");
            return;
        }

        writer.WriteStartObject("layer");
        writer.WriteString("digest", layer.Digest.Value);
        writer.WriteString("diffId", layer.DiffId.Value);
        writer.WriteNumber("size", layer.Size);
        writer.WriteEndObject();
    }

    /// <summary>One line per step, the steps' own output indented, transfers as a bar on a terminal.</summary>
    private sealed class ConsoleProgress(CliConsole console, TextWriter lines) : IBuildProgress
    {
        private bool _barShown;

        public void StepDone(StepReport report)
        {
            EndBar();
            var label = $"[{report.Stage.Name} {report.Step.Index + 1}/{report.Stage.Steps.Count}]";
            var outcome = report.Outcome switch { StepOutcome.Cached => "CACHED", StepOutcome.Built => "BUILT", _ => "CONFIG" };
            var size = report.Layer is null ? string.Empty : $" {CacheService.Cli.Output.Size(report.Layer.Size)}";
            lines.WriteLine($"{outcome,-6} {label} {report.Step.Node.Original.Trim()}  {report.Elapsed.TotalSeconds:0.0}s{size}");
        }

        public void StepOutput(string line)
        {
            EndBar();
            console.Error.WriteLine("  | " + line);
        }

        public void Transfer(string verb, long done, long total)
        {
            if (!console.IsTerminal || total <= 0)
            {
                return;
            }

            var percent = (int)(Math.Min(done, total) * 100 / total);
            var filled = percent * 30 / 100;
            console.Error.Write($"\r{verb} [{new string('#', filled)}{new string('.', 30 - filled)}] {percent,3}% {CacheService.Cli.Output.Size(done)}/{CacheService.Cli.Output.Size(total)}");
            _barShown = true;
        }

        public void Warning(string message)
        {
            EndBar();
            console.Error.WriteLine("warning: " + message);
        }

        private void EndBar()
        {
            if (_barShown)
            {
                console.Error.WriteLine();
                _barShown = false;
            }
        }
    }
}
