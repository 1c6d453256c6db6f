using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CacheService.Testing;

namespace CacheService.Bench;

/// <summary>
/// One realistic Dockerfile (three stages, RUN steps that take real seconds, about 90 MB of
/// layers) built cold, warm on a fresh storage root, and after a one-file edit, by
/// <c>layercache build</c> (embedded, and Redis + Ceph RGW) and by <c>buildah bud --layers
/// --cache-to/--cache-from</c> against Debian's docker-registry. The systems alternate within each
/// round and each figure is the median over the rounds: one sample each swings too much on a
/// shared machine.
/// </summary>
internal static class BuildBench
{
    private const int Rounds = 3;

    private sealed record System(string Name, Func<string, string, string, Task> Build);

    private sealed record Times(double Cold, double Warm, double Edit);

    public static async Task<int> RunAsync()
    {
        var work = Directory.CreateTempSubdirectory("cs-bench-build-").FullName;
        var registryDir = Path.Combine(work, "distribution");
        var registryPort = ServiceScripts.FreePort();
        ServiceScripts.Run("docker-registry.sh", "start", registryDir, registryPort.ToString(CultureInfo.InvariantCulture));
        try
        {
            using var embedded = new ServerProcess();
            using var redis = RedisServers.StartSingle();
            using var rgw = new RgwServer();
            var s3 = rgw.Options("build-bench");
            using var distributed = new ServerProcess(
                "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={redis.Configuration}", RedisServers.EntryKeyArg,
                "--CacheService:Storage:BlobEngine=s3", $"--CacheService:S3:Endpoint={s3.Endpoint}", $"--CacheService:S3:Bucket={s3.Bucket}",
                $"--CacheService:S3:Prefix={s3.Prefix}", $"--CacheService:S3:AccessKey={s3.AccessKey}", $"--CacheService:S3:SecretKey={s3.SecretKey}");
            System[] systems =
            [
                new("buildah bud --layers, cache in docker-registry", (root, context, round) => BuildahAsync(root, context, $"127.0.0.1:{registryPort}/bench/cache-{round}")),
                new("layercache build, embedded server", (root, context, round) => LayercacheAsync(root, context, embedded.GrpcAddress, $"bench/round-{round}")),
                new("layercache build, Redis + Ceph RGW", (root, context, round) => LayercacheAsync(root, context, distributed.GrpcAddress, $"bench/round-{round}")),
            ];

            var samples = systems.ToDictionary(s => s.Name, _ => new List<Times>());
            for (var round = 0; round < Rounds; round++)
            {
                foreach (var system in round % 2 == 0 ? systems : systems.Reverse())
                {
                    samples[system.Name].Add(await MeasureAsync(work, system, round));
                }
            }

            Report(systems, samples);
            return 0;
        }
        finally
        {
            ServiceScripts.Run("docker-registry.sh", "stop", registryDir);
            Directory.Delete(work, recursive: true);
        }
    }

    // Cold (nothing cached), warm (another machine: a fresh root, same commit), edit (a fresh root
    // after one source file changed).
    private static async Task<Times> MeasureAsync(string work, System system, int round)
    {
        var context = await ContextAsync(Path.Combine(work, $"context-{Guid.NewGuid():N}"));
        async Task<double> Timed(string what)
        {
            Console.Error.WriteLine($"round {round + 1}, {system.Name}: {what}");
            var root = Path.Combine(work, "roots", Guid.NewGuid().ToString("N"));
            var clock = Stopwatch.StartNew();
            await system.Build(root, context, round.ToString(CultureInfo.InvariantCulture));
            clock.Stop();
            Directory.Delete(root, recursive: true);
            return clock.Elapsed.TotalSeconds;
        }

        var cold = await Timed("cold");
        var warm = await Timed("warm, fresh root");
        await File.AppendAllTextAsync(Path.Combine(context, "src", "main.sh"), "echo edited\n");
        var edit = await Timed("one file edited, fresh root");
        Directory.Delete(context, recursive: true);
        return new Times(cold, warm, edit);
    }

    private static async Task<string> ContextAsync(string context)
    {
        Directory.CreateDirectory(Path.Combine(context, "src"));
        File.Copy("/bin/busybox", Path.Combine(context, "busybox"));
        await File.WriteAllTextAsync(Path.Combine(context, "deps.txt"), "vendor-1.0\n");
        await File.WriteAllTextAsync(Path.Combine(context, "src", "main.sh"), "echo app\n");
        await File.WriteAllBytesAsync(Path.Combine(context, "data.bin"), Layers.Random(16 << 20, 1));
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), """
            FROM scratch AS toolchain
            COPY busybox /bin/busybox
            RUN ["/bin/busybox", "--install", "-s", "/bin"]

            FROM toolchain AS build
            COPY deps.txt /src/
            RUN sleep 3 && mkdir -p /deps && head -c 30000000 /dev/urandom > /deps/vendor.bin
            COPY src/ /src/src/
            RUN sleep 2 && mkdir -p /out && cat /src/src/* /deps/vendor.bin | head -c 20000000 > /out/app.bin

            FROM toolchain
            COPY data.bin /data/data.bin
            COPY --from=build /out/app.bin /app.bin
            RUN sleep 1 && sha256sum /app.bin > /app.sum
            """);
        return context;
    }

    private static async Task BuildahAsync(string root, string context, string cache) => await RunAsync("buildah",
        "--root", Path.Combine(root, "root"), "--runroot", Path.Combine(root, "run"), "--storage-driver", "vfs",
        "bud", "--isolation", "chroot", "--layers", "--cache-to", cache, "--cache-from", cache, "--tls-verify=false", "-t", "bench", context);

    private static async Task LayercacheAsync(string root, string context, string server, string ns) => await RunAsync(
        Path.Combine(ServiceScripts.RepositoryRoot, "bin", "layercache"),
        "build", context, "--server", server, "--namespace", ns,
        "--root", Path.Combine(root, "root"), "--runroot", Path.Combine(root, "run"), "--storage-driver", "vfs", "-t", "bench");

    private static async Task RunAsync(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed:\n{await output}\n{await error}");
        }
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static void Report(System[] systems, Dictionary<string, List<Times>> samples)
    {
        var medians = systems.ToDictionary(s => s.Name, s => new Times(
            Median(samples[s.Name].Select(t => t.Cold)), Median(samples[s.Name].Select(t => t.Warm)), Median(samples[s.Name].Select(t => t.Edit))));
        var reference = medians[systems[0].Name];
        Console.WriteLine($"## Building one Dockerfile: layercache build vs buildah with a registry cache (medians of {Rounds} rounds, loopback)");
        Console.WriteLine();
        Console.WriteLine("| system | cold | warm, fresh root | warm vs buildah | one file edited | edit vs buildah |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var system in systems)
        {
            var t = medians[system.Name];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {system.Name} | {t.Cold:F1} s | {t.Warm:F1} s | {reference.Warm / t.Warm:F2}x | {t.Edit:F1} s | {reference.Edit / t.Edit:F2}x |"));
        }

        var results = Path.Combine(ServiceScripts.RepositoryRoot, "bench", "results");
        Directory.CreateDirectory(results);
        File.WriteAllText(Path.Combine(results, "build.json"), JsonSerializer.Serialize(
            new { command = "make bench-build", measuredAt = DateTimeOffset.UtcNow, rounds = Rounds, medians, samples }, Indented));
        Console.WriteLine();
        Console.WriteLine("written to bench/results/build.json (x > 1 means faster than buildah with docker-registry)");
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
