using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CacheService.Testing;

namespace CacheService.Bench;

/// <summary>
/// The same buildah <c>--cache-to</c> / <c>--cache-from</c> builds against Debian's docker-registry
/// (CNCF Distribution, on the file system and with its S3 driver on Ceph RGW) and against the
/// CacheService facade (embedded; Redis + Ceph RGW relaying every byte; and Redis + Ceph RGW
/// keeping local copies, <c>S3:LocalCopyBytes</c>), on loopback, in one run; each facade is
/// compared with Distribution on the same kind of storage. Each round builder A pushes the cache to a fresh repository and builder
/// B (a fresh storage root) takes every step from it; the registries take turns within a round,
/// in a rotating order, and each figure is the median of the rounds. Beside them, the registry's
/// own share: what B fetched (every cached step's manifest, config and layers) fetched again over
/// plain HTTP, alternating the registries, and the bytes each registry hashed per byte it served.
/// </summary>
internal static class RegistryBench
{
    private const int Rounds = 5;

    // Replays per registry: they are quick, and more of them steady the median.
    private const int Replays = 15;

    private const string ManifestTypes = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

    // Reference: the Distribution set-up a target is compared with, on the same kind of storage.
    private sealed record Target(string Name, string Registry, Func<long> Requests, Func<double> HashedBytes, Func<double> ServedBytes)
    {
        public string Reference { get; init; } = Name;
    }

    private sealed record Samples(List<double> BuilderA, List<double> BuilderB, List<double> Replay)
    {
        public long BuilderBRequests { get; set; }

        public long ReplayBytes { get; set; }
    }

    private sealed record Row(
        string Target, string ComparedWith, double BuilderASeconds, double BuilderAVsDistribution, double BuilderBSeconds, double BuilderBVsDistribution,
        long BuilderBRequests, double ReplaySeconds, double ReplayVsDistribution, long ReplayBytes, double BytesHashedPerByteServed);

    public static async Task<int> RunAsync()
    {
        var work = Directory.CreateTempSubdirectory("cs-bench-registry-").FullName;
        var distributionDir = Path.Combine(work, "distribution");
        var distributionS3Dir = Path.Combine(work, "distribution-s3");
        var distributionPort = ServiceScripts.FreePort();
        ServiceScripts.Run("docker-registry.sh", "start", distributionDir, distributionPort.ToString(CultureInfo.InvariantCulture));
        try
        {
            var context = await ContextAsync(work);
            using var http = new HttpClient();
            using var embedded = new ServerProcess();
            using var redis = RedisServers.StartSingle();
            using var rgw = new RgwServer();
            var s3 = rgw.Options("registry-bench");
            using var copiesRedis = RedisServers.StartSingle();
            string[] Distributed(RedisServers index, string prefix) =>
            [
                "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={index.Configuration}", RedisServers.EntryKeyArg,
                "--CacheService:Storage:BlobEngine=s3", $"--CacheService:S3:Endpoint={s3.Endpoint}", $"--CacheService:S3:Bucket={s3.Bucket}",
                $"--CacheService:S3:Prefix={prefix}", $"--CacheService:S3:AccessKey={s3.AccessKey}", $"--CacheService:S3:SecretKey={s3.SecretKey}",
            ];
            using var distributed = new ServerProcess(Distributed(redis, s3.Prefix));
            using var copying = new ServerProcess([.. Distributed(copiesRedis, s3.Prefix + "-copies"), "--CacheService:S3:LocalCopyBytes=4294967296"]);

            // Distribution's S3 driver on the same gateway, in the bucket the servers made; it redirects blob GETs there.
            var distributionS3Port = ServiceScripts.FreePort();
            ServiceScripts.Run("docker-registry.sh", "start", distributionS3Dir, distributionS3Port.ToString(CultureInfo.InvariantCulture), s3.Endpoint, s3.Bucket, s3.AccessKey, s3.SecretKey);
            const string OnFiles = "CNCF Distribution (docker-registry), file system";
            const string OnRgw = "CNCF Distribution (docker-registry), Ceph RGW";
            Target[] targets =
            [
                Distribution(OnFiles, distributionDir, distributionPort),
                Facade("CacheService, embedded", embedded, http) with { Reference = OnFiles },
                Distribution(OnRgw, distributionS3Dir, distributionS3Port),
                Facade("CacheService, Redis + Ceph RGW", distributed, http) with { Reference = OnRgw },
                Facade("CacheService, Redis + Ceph RGW, local copies", copying, http) with { Reference = OnRgw },
            ];

            var samples = targets.ToDictionary(t => t.Name, _ => new Samples([], [], []));
            var hashed = targets.ToDictionary(t => t.Name, t => (Hashed: t.HashedBytes(), Served: t.ServedBytes()));
            for (var round = 0; round < Rounds; round++)
            {
                foreach (var target in Rotate(targets, round))
                {
                    await BuildsAsync(work, context, target, round, samples[target.Name]);
                }
            }

            for (var replay = 0; replay < Replays; replay++)
            {
                foreach (var target in Rotate(targets, replay))
                {
                    await ReplayAsync(http, target, samples[target.Name]);
                }
            }

            Report(targets, samples, targets.ToDictionary(
                t => t.Name, t => (t.HashedBytes() - hashed[t.Name].Hashed) / Math.Max(1, t.ServedBytes() - hashed[t.Name].Served)));
            return 0;
        }
        finally
        {
            ServiceScripts.Run("docker-registry.sh", "stop", distributionDir);
            ServiceScripts.Run("docker-registry.sh", "stop", distributionS3Dir);
            Directory.Delete(work, recursive: true);
        }
    }

    // Distribution sends stored files as they are (or redirects to them): it hashes nothing it serves.
    private static Target Distribution(string name, string dir, int port) => new(
        name, $"127.0.0.1:{port}",
        () => File.ReadLines(Path.Combine(dir, "registry.log")).Count(l => l.Contains("response completed", StringComparison.Ordinal)),
        () => 0, () => 1);

    private static Target Facade(string name, ServerProcess server, HttpClient http)
    {
        double Metric(string prefix) => http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics").GetAwaiter().GetResult().Split('\n')
            .Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
        return new Target(name, $"127.0.0.1:{server.HttpPort}",
            () => (long)Metric("cacheservice_registry_requests_total{"),
            () => Metric("cacheservice_verified_bytes_total{check=\"read\"}"),
            () => Metric("cacheservice_layer_bytes_total{direction=\"download\"}"));
    }

    private static IEnumerable<Target> Rotate(Target[] targets, int round) => targets.Skip(round % targets.Length).Concat(targets.Take(round % targets.Length));

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

    // Builder A pushes the cache to this round's repository; builder B, on a fresh root, takes every step from it.
    private static async Task BuildsAsync(string work, string context, Target target, int round, Samples samples)
    {
        var repository = $"{target.Registry}/team/cache-{round}";
        Console.Error.WriteLine($"round {round + 1}, {target.Name}: builder A pushes the cache");
        samples.BuilderA.Add(await BuildAsync(work, target, repository, "--cache-to", context));
        var before = target.Requests();
        Console.Error.WriteLine($"round {round + 1}, {target.Name}: builder B takes it from a fresh root");
        samples.BuilderB.Add(await BuildAsync(work, target, repository, "--cache-from", context));
        samples.BuilderBRequests = target.Requests() - before;
    }

    private static async Task<double> BuildAsync(string work, Target target, string repository, string cacheFlag, string context)
    {
        var root = Path.Combine(work, "builders", Guid.NewGuid().ToString("N"));
        string[] args =
        [
            "--root", Path.Combine(root, "root"), "--runroot", Path.Combine(root, "run"), "--storage-driver", "vfs",
            "bud", "--isolation", "chroot", "--layers", cacheFlag, repository, "--tls-verify=false", context,
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
        return clock.Elapsed.TotalSeconds;
    }

    // Fetches every cached step of round 1's repository whole (manifest, config, layers), as a fresh builder would.
    private static async Task ReplayAsync(HttpClient http, Target target, Samples samples)
    {
        var registry = $"http://{target.Registry}/v2/team/cache-0";
        var clock = Stopwatch.StartNew();
        long bytes = 0;
        var tags = JsonDocument.Parse(await http.GetStringAsync($"{registry}/tags/list")).RootElement.GetProperty("tags").EnumerateArray().Select(t => t.GetString()!).ToList();
        foreach (var tag in tags)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"{registry}/manifests/{tag}");
            request.Headers.Accept.ParseAdd(ManifestTypes);
            using var response = await http.SendAsync(request);
            var manifest = await response.EnsureSuccessStatusCode().Content.ReadAsByteArrayAsync();
            bytes += manifest.Length;
            var root = JsonDocument.Parse(manifest).RootElement;
            foreach (var descriptor in root.GetProperty("layers").EnumerateArray().Prepend(root.GetProperty("config")))
            {
                using var blob = await http.GetAsync($"{registry}/blobs/{descriptor.GetProperty("digest").GetString()}", HttpCompletionOption.ResponseHeadersRead);
                await using var body = await blob.EnsureSuccessStatusCode().Content.ReadAsStreamAsync();
                bytes += await DrainAsync(body);
            }
        }

        samples.Replay.Add(clock.Elapsed.TotalSeconds);
        samples.ReplayBytes = bytes;
    }

    private static async Task<long> DrainAsync(Stream body)
    {
        var buffer = new byte[256 * 1024];
        long total = 0;
        int read;
        while ((read = await body.ReadAsync(buffer)) > 0)
        {
            total += read;
        }

        return total;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static void Report(Target[] targets, Dictionary<string, Samples> samples, Dictionary<string, double> hashedPerServed)
    {
        var rows = targets.Select(t =>
        {
            var (s, reference) = (samples[t.Name], samples[t.Reference]);
            return new Row(t.Name, t.Reference, Median(s.BuilderA), Median(reference.BuilderA) / Median(s.BuilderA), Median(s.BuilderB), Median(reference.BuilderB) / Median(s.BuilderB),
                s.BuilderBRequests, Median(s.Replay), Median(reference.Replay) / Median(s.Replay), s.ReplayBytes, hashedPerServed[t.Name]);
        }).ToList();

        Console.WriteLine($"## buildah remote layer cache: CNCF Distribution vs the CacheService facade (medians of {Rounds} alternating rounds, loopback)");
        Console.WriteLine();
        Console.WriteLine("Each ratio compares with Distribution on the same kind of storage (x > 1: faster than Distribution).");
        Console.WriteLine();
        Console.WriteLine("| registry | builder A (cache-to) | A vs Distribution | builder B (cache-from, fresh root) | B vs Distribution | B's requests | B's content fetched again | vs Distribution | bytes hashed per byte served |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {row.Target} | {row.BuilderASeconds:F2} s | {row.BuilderAVsDistribution:F2}x | {row.BuilderBSeconds:F2} s | {row.BuilderBVsDistribution:F2}x | {row.BuilderBRequests} | {row.ReplaySeconds * 1000:F0} ms ({row.ReplayBytes / 1e6:F1} MB) | {row.ReplayVsDistribution:F2}x | {row.BytesHashedPerByteServed:F2} |"));
        }

        var results = Path.Combine(ServiceScripts.RepositoryRoot, "bench", "results");
        Directory.CreateDirectory(results);
        File.WriteAllText(Path.Combine(results, "registry.json"), JsonSerializer.Serialize(
            new { command = "make bench-registry", measuredAt = DateTimeOffset.UtcNow, rounds = Rounds, replays = Replays, rows, samples }, Indented));
        Console.WriteLine();
        Console.WriteLine("written to bench/results/registry.json (x > 1 means faster than Distribution)");
    }

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
}
