using System.Runtime.InteropServices;
using System.Text.Json;
using CacheService.Core;
using CacheService.Dockerfile;
using Wire = CacheService.Api.V1;

namespace CacheService.Cli;

/// <summary><c>layercache plan</c> and <c>layercache history</c>: a Dockerfile resolved against the cache.</summary>
internal static class PlanCommands
{
    public static async Task<int> PlanAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var resolved = await ResolveAsync(args, console, cancellationToken);
        if (args.Has("--json"))
        {
            await Output.WriteJsonAsync(console.Out, writer =>
            {
                writer.WriteNumber("cachedSteps", resolved.CachedSteps);
                writer.WriteStartArray("steps");
                foreach (var step in resolved.Steps)
                {
                    writer.WriteStartObject();
                    WriteStep(writer, step);
                    writer.WriteString("status", step.Status.ToString().ToLowerInvariant());
                    WriteLayer(writer, step.Layer);
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
            });
            return LayercacheCli.Ok;
        }

        foreach (var step in resolved.Steps)
        {
            var status = step.Status switch { PlanStatus.Hit => "CACHED", PlanStatus.Miss => "MISS", _ => "PENDING" };
            var key = step.Status == PlanStatus.Miss ? $"  (key {step.Key})" : string.Empty;
            await console.Out.WriteLineAsync($"{status,-7} {Label(step)} {step.Step.Node.Original.Trim()}{key}");
        }

        var firstMiss = resolved.Steps.FirstOrDefault(s => s.Status != PlanStatus.Hit);
        await console.Out.WriteLineAsync(firstMiss is null
            ? $"{resolved.CachedSteps} of {resolved.Steps.Count} steps cached: nothing to rebuild"
            : $"{resolved.CachedSteps} of {resolved.Steps.Count} steps cached: rebuild from {Label(firstMiss)}");
        return LayercacheCli.Ok;
    }

    public static async Task<int> HistoryAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var resolved = await ResolveAsync(args, console, cancellationToken);
        var cached = resolved.Steps.Where(s => s.Status == PlanStatus.Hit).Reverse().ToList();
        if (args.Has("--json"))
        {
            await Output.WriteJsonAsync(console.Out, writer =>
            {
                writer.WriteStartArray("steps");
                foreach (var step in cached)
                {
                    writer.WriteStartObject();
                    WriteStep(writer, step);
                    WriteLayer(writer, step.Layer);
                    if (step.Created is { } created)
                    {
                        writer.WriteString("created", created);
                    }
                    else
                    {
                        writer.WriteNull("created");
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteNumber("uncachedSteps", resolved.Steps.Count - cached.Count);
            });
            return LayercacheCli.Ok;
        }

        await console.Out.WriteLineAsync($"{"LAYER",-19} {"CREATED",-15} {"SIZE",8}  CREATED BY");
        var now = console.Time.GetUtcNow();
        foreach (var step in cached)
        {
            var layer = step.Layer is null ? "<config>" : step.Layer.Digest[..19];
            var age = step.Created is { } created ? Age(now - created) : "-";
            var size = step.Layer is null ? "0B" : Output.Size(step.Layer.Size);
            await console.Out.WriteLineAsync($"{layer,-19} {age,-15} {size,8}  {Label(step)} {step.Step.Node.Original.Trim()}");
        }

        if (resolved.Steps.Count > cached.Count)
        {
            await console.Out.WriteLineAsync($"({resolved.Steps.Count - cached.Count} more steps are not cached)");
        }

        return LayercacheCli.Ok;
    }

    private static async Task<ResolvedPlan> ResolveAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var target = LayercacheCli.Target(args, console);
        var (_, plan, _, _) = await PlanDockerfileAsync(args, args.Value("--context") ?? ".", console, cancellationToken);
        using var client = LayercacheCli.Connect(target);
        var resolved = await PlanResolver.ResolveAsync(plan, client, target.Namespace, target.Fallbacks, cancellationToken);
        if (resolved.Degraded)
        {
            await console.Error.WriteLineAsync("warning: the cache backend could not be asked for some steps; they are reported as misses");
        }

        return resolved;
    }

    /// <summary>Reads the Dockerfile (-f, default CONTEXT/Dockerfile) and plans it with the plan options; warnings go to stderr.</summary>
    public static async Task<(ParsedDockerfile Dockerfile, BuildPlan Plan, BuildContext Context, BuildSettings Settings)> PlanDockerfileAsync(
        Arguments args, string contextDir, CliConsole console, CancellationToken cancellationToken)
    {
        var file = args.Value("--file") ?? Path.Combine(contextDir, "Dockerfile");
        if (!File.Exists(file))
        {
            throw new IOException($"no Dockerfile at '{file}' (give one with -f)");
        }

        var settings = new BuildSettings
        {
            Target = args.Value("--target"),
            BuildArgs = args.Pairs("--build-arg"),
            Platform = args.Value("--platform") ?? NativePlatform(),
            BaseImages = BaseImages(args),
        };
        var dockerfile = DockerfileParser.Parse(await File.ReadAllTextAsync(file, cancellationToken));
        var context = new BuildContext(contextDir, file);
        var plan = BuildPlanner.Plan(dockerfile, context, settings);
        foreach (var warning in dockerfile.Warnings.Concat(plan.Warnings))
        {
            await console.Error.WriteLineAsync("warning: " + warning);
        }

        return (dockerfile, plan, context, settings);
    }

    // --base REF=DIGEST; the reference may hold '=' only before the digest.
    private static Dictionary<string, Digest> BaseImages(Arguments args)
    {
        var images = new Dictionary<string, Digest>(StringComparer.Ordinal);
        foreach (var value in args.Values("--base"))
        {
            var at = value.LastIndexOf('=');
            if (at <= 0 || !Digest.TryParse(value[(at + 1)..], out var digest))
            {
                throw new UsageException($"--base takes REF=sha256:<64 hex>, got '{value}'");
            }

            images[value[..at]] = digest;
        }

        return images;
    }

    private static string NativePlatform() => "linux/" + RuntimeInformation.OSArchitecture switch
    {
        Architecture.Arm64 => "arm64",
        Architecture.Arm => "arm/v7",
        _ => "amd64",
    };

    private static string Label(PlanStep step) => $"[{step.Stage.Name} {step.Step.Index + 1}/{step.Stage.Steps.Count}]";

    private static void WriteStep(Utf8JsonWriter writer, PlanStep step)
    {
        writer.WriteString("stage", step.Stage.Name);
        writer.WriteNumber("index", step.Step.Index);
        writer.WriteString("instruction", step.Step.Node.Original.Trim());
        if (step.Key is { } key)
        {
            writer.WriteString("key", key.Value);
        }
        else
        {
            writer.WriteNull("key");
        }
    }

    private static void WriteLayer(Utf8JsonWriter writer, Wire.LayerDescriptor? layer)
    {
        if (layer is null)
        {
            writer.WriteNull("layer");
            return;
        }

        writer.WriteStartObject("layer");
        writer.WriteString("digest", layer.Digest);
        writer.WriteString("diffId", layer.DiffId);
        writer.WriteNumber("size", layer.Size);
        writer.WriteEndObject();
    }

    private static string Age(TimeSpan age) => age switch
    {
        { TotalMinutes: < 1 } => "seconds ago",
        { TotalHours: < 1 } => $"{(int)age.TotalMinutes} minutes ago",
        { TotalDays: < 1 } => $"{(int)age.TotalHours} hours ago",
        _ => $"{(int)age.TotalDays} days ago",
    };
}
