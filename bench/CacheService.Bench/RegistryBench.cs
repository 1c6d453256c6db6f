using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Net.Client;

namespace CacheService.Bench;

/// <summary>
/// The same buildah <c>--cache-to</c> / <c>--cache-from</c> builds against Debian's docker-registry
/// (CNCF Distribution) and against the CacheService facade (embedded, and Redis + Ceph RGW), on
/// loopback, in one run: builder B's wall time (a fresh storage root taking every step from the
/// remote cache), the requests B made, and the bytes the cache holds after builder A.
/// </summary>
internal static class RegistryBench
{
    private sealed record Target(string Name, string Registry, Func<long> Requests, Func<Task<long>> StoredBytes);

    private sealed record Row(string Target, double BuilderASeconds, double BuilderBSeconds, long BuilderBRequests, long StoredBytes);

    public static async Task<int> RunAsync()
    {
        var work = Directory.CreateTempSubdirectory("cs-bench-registry-").FullName;
        try
        {
            var context = await ContextAsync(work);
            var rows = new List<Row>
            {
                await DistributionAsync(work, context),
                await FacadeAsync(work, context, "CacheService, embedded", []),
            };
            using (var redis = RedisServers.StartSingle())
            using (var rgw = new RgwServer())
            {
                var s3 = rgw.Options("registry-bench");
                rows.Add(await FacadeAsync(work, context, "CacheService, Redis + Ceph RGW",
                [
                    "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={redis.Configuration}", RedisServers.EntryKeyArg,
                    "--CacheService:Storage:BlobEngine=s3", $"--CacheService:S3:Endpoint={s3.Endpoint}", $"--CacheService:S3:Bucket={s3.Bucket}",
                    $"--CacheService:S3:Prefix={s3.Prefix}", $"--CacheService:S3:AccessKey={s3.AccessKey}", $"--CacheService:S3:SecretKey={s3.SecretKey}",
                ]));
            }

            Report(rows);
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    // busybox for a shell, a 32 MB data file, and RUN steps on top of FROM scratch.
    private static async Task<string> ContextAsync(string work)
    {
        var context = Directory.CreateDirectory(Path.Combine(work, "context")).FullName;
        File.Copy("/bin/busybox", Path.Combine(context, "busybox"));
        await File.WriteAllBytesAsync(Path.Combine(context, "data.bin"), Layers.Random(32 << 20, 1));
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), """
            FROM scratch
            COPY busybox /bin/busybox
            RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]
            COPY data.bin /data/data.bin
            RUN sha256sum /data/data.bin > /data/sum.txt
            RUN mkdir -p /out && for i in 1 2 3 4 5 6 7 8; do head -c 1048576 /data/data.bin > /out/part$i; done
            """);
        return context;
    }

    private static async Task<Row> DistributionAsync(string work, string context)
    {
        var dir = Path.Combine(work, "distribution");
        var port = ServiceScripts.FreePort();
        ServiceScripts.Run("docker-registry.sh", "start", dir, port.ToString(CultureInfo.InvariantCulture));
        try
        {
            long Requests() => File.ReadLines(Path.Combine(dir, "registry.log")).Count(l => l.Contains("response completed", StringComparison.Ordinal));
            Task<long> Stored() => Task.FromResult(Directory.EnumerateFiles(Path.Combine(dir, "data"), "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length));
            return await MeasureAsync(work, context, new Target("CNCF Distribution (docker-registry)", $"127.0.0.1:{port}", Requests, Stored));
        }
        finally
        {
            ServiceScripts.Run("docker-registry.sh", "stop", dir);
        }
    }

    private static async Task<Row> FacadeAsync(string work, string context, string name, string[] engines)
    {
        using var server = new ServerProcess(engines);
        using var http = new HttpClient();
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new LayerCache.LayerCacheClient(channel);
        long Requests() => http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics").GetAwaiter().GetResult().Split('\n')
            .Where(l => l.StartsWith("cacheservice_registry_requests_total{", StringComparison.Ordinal))
            .Sum(l => (long)double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
        async Task<long> Stored() => (await client.GetStatsAsync(new GetStatsRequest { Namespace = "team/cache" })).StoredBytes;
        return await MeasureAsync(work, context, new Target(name, $"127.0.0.1:{server.HttpPort}", Requests, Stored));
    }

    private static async Task<Row> MeasureAsync(string work, string context, Target target)
    {
        Console.Error.WriteLine($"{target.Name}: builder A pushes the cache");
        var a = await BuildAsync(work, target, "--cache-to", context);
        var before = target.Requests();
        Console.Error.WriteLine($"{target.Name}: builder B takes it from a fresh root");
        var b = await BuildAsync(work, target, "--cache-from", context);
        return new Row(target.Name, a.TotalSeconds, b.TotalSeconds, target.Requests() - before, await target.StoredBytes());
    }

    private static async Task<TimeSpan> BuildAsync(string work, Target target, string cacheFlag, string context)
    {
        var root = Path.Combine(work, "builders", Guid.NewGuid().ToString("N"));
        string[] args =
        [
            "--root", Path.Combine(root, "root"), "--runroot", Path.Combine(root, "run"), "--storage-driver", "vfs",
            "bud", "--isolation", "chroot", "--layers", cacheFlag, $"{target.Registry}/team/cache", "--tls-verify=false", context,
        ];
        var clock = Stopwatch.StartNew();
        var (exit, output, error) = await Tools.RunAsync("buildah", "buildah", null, args);
        clock.Stop();
        if (exit != 0)
        {
            throw new InvalidOperationException($"buildah failed against {target.Name}:\n{output}\n{error}");
        }

        if (cacheFlag == "--cache-from" && output.Split('\n').Count(l => l.Contains("Cache pulled from remote", StringComparison.Ordinal)) != 5)
        {
            throw new InvalidOperationException($"builder B did not take all 5 steps from {target.Name}:\n{output}");
        }

        Directory.Delete(root, recursive: true);
        return clock.Elapsed;
    }

    private static void Report(List<Row> rows)
    {
        var reference = rows[0];
        Console.WriteLine("## buildah remote layer cache: CNCF Distribution vs the CacheService facade (one run, loopback)");
        Console.WriteLine();
        Console.WriteLine("| registry | builder A (cache-to) | builder B (cache-from, fresh root) | B vs Distribution | B's requests | bytes stored |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Target} | {row.BuilderASeconds:F2} s | {row.BuilderBSeconds:F2} s | {reference.BuilderBSeconds / row.BuilderBSeconds:F2}x | {row.BuilderBRequests} | {row.StoredBytes / 1e6:F1} MB |"));
        }

        var results = Path.Combine(ServiceScripts.RepositoryRoot, "bench", "results");
        Directory.CreateDirectory(results);
        File.WriteAllText(Path.Combine(results, "registry.json"), JsonSerializer.Serialize(new { command = "make bench-registry", measuredAt = DateTimeOffset.UtcNow, rows }, Indented));
        Console.WriteLine();
        Console.WriteLine("written to bench/results/registry.json (B vs Distribution > 1 means faster than Distribution)");
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
