using System.Globalization;
using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Cli;

/// <summary><c>layercache key</c>, <c>stats</c> and <c>delete</c>.</summary>
internal static class AdminCommands
{
    public static async Task<int> KeyAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var parent = LayercacheCli.DigestOption(args, "--parent");
        var instruction = args.Value("--instruction") ?? throw new UsageException("--instruction TEXT is required");
        Digest? sources = args.Value("--sources") is null ? null : LayercacheCli.DigestOption(args, "--sources");
        var input = new StepKeyInput(parent, args.Value("--platform") ?? Dockerfile.BuildSettings.HostPlatform, instruction, [.. args.Pairs("--arg")], sources);
        var step = CacheKeyV2.Compute(input);
        if (args.Has("--json"))
        {
            await Output.WriteJsonAsync(console.Out, writer =>
            {
                writer.WriteString("key", step.Key.Value);
                writer.WriteString("normalizedInstruction", step.NormalizedInstruction);
                writer.WriteBoolean("layerStep", step.IsLayerStep);
                writer.WriteString("preimage", Convert.ToHexStringLower(step.Preimage));
            });
        }
        else
        {
            await console.Out.WriteLineAsync(step.Key.Value);
        }

        return LayercacheCli.Ok;
    }

    public static async Task<int> StatsAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var target = LayercacheCli.Target(args, console);
        using var client = LayercacheCli.Connect(target);
        var stats = await client.GetStatsAsync(target.Namespace, cancellationToken);
        if (args.Has("--json"))
        {
            await Output.WriteJsonAsync(console.Out, writer =>
            {
                writer.WriteString("namespace", target.Namespace);
                writer.WriteNumber("lookups", stats.Lookups);
                writer.WriteNumber("hits", stats.Hits);
                writer.WriteNumber("misses", stats.Misses);
                writer.WriteNumber("hitRatio", stats.HitRatio);
                writer.WriteNumber("entries", stats.Entries);
                writer.WriteNumber("storedBytes", stats.StoredBytes);
                writer.WriteNumber("evictions", stats.Evictions);
                writer.WriteNumber("bytesUploaded", stats.BytesUploaded);
                writer.WriteNumber("bytesDownloaded", stats.BytesDownloaded);
            });
            return LayercacheCli.Ok;
        }

        var ratio = stats.HitRatio.ToString("P1", CultureInfo.InvariantCulture);
        await console.Out.WriteLineAsync(
            $"namespace  {target.Namespace}\nlookups    {stats.Lookups} ({stats.Hits} hits, {stats.Misses} misses, hit ratio {ratio})\n" +
            $"entries    {stats.Entries}\nstored     {Output.Size(stats.StoredBytes)}\nevictions  {stats.Evictions}\n" +
            $"uploaded   {Output.Size(stats.BytesUploaded)}\ndownloaded {Output.Size(stats.BytesDownloaded)}");
        return LayercacheCli.Ok;
    }

    public static async Task<int> DeleteAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var target = LayercacheCli.Target(args, console);
        var keys = args.Values("--key").Select(k => Digest.TryParse(k, out var d) ? d : throw new UsageException($"--key must be sha256:<64 lower-case hex>, got '{k}'")).ToList();
        if (keys.Count == 0)
        {
            throw new UsageException("give at least one --key");
        }

        using var client = LayercacheCli.Connect(target);
        var deleted = await client.DeleteAsync(target.Namespace, keys, cancellationToken);
        await console.Out.WriteLineAsync($"deleted {deleted} of {keys.Count} keys from {target.Namespace}");
        return LayercacheCli.Ok;
    }
}
