using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Blobs.S3;
using CacheService.Core.Keys;
using CacheService.Testing;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Digest = CacheService.Core.Digest;

namespace CacheService.Bench;

/// <summary>One line of the results table: a scenario beside its ceiling from the same run.</summary>
internal sealed record BenchRow(string Scenario, string Result, string Ceiling, double? Ratio, string Target, bool? Met);

/// <summary>
/// The server against the machine's own ceilings, in one run: a separate server process (embedded
/// engines, or Redis + Ceph RGW) driven over gRPC, beside the gRPC health Check on the same server
/// (what gRPC costs), the same index reads issued to Redis directly (what the index costs) and
/// the same bytes written to the store directly (what the store costs).
/// </summary>
internal sealed class ServiceBench
{
    private const string Ns = "bench/main";
    private const int HitKeys = 1000;
    private const int ChainSteps = 20;
    private const string MediaType = "application/vnd.oci.image.layer.v1.tar";

    // The health service's liveness name runs no check: what a gRPC call costs by itself.
    private static readonly HealthCheckRequest Liveness = new() { Service = "liveness" };

    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly bool _distributed;
    private readonly int _callers;
    private readonly TimeSpan _warmUp;
    private readonly TimeSpan _duration;
    private readonly List<BenchRow> _rows = [];

    private ServiceBench(bool distributed, int callers, TimeSpan duration)
    {
        _distributed = distributed;
        _callers = callers;
        _warmUp = TimeSpan.FromSeconds(2);
        _duration = duration;
    }

    public static async Task<int> RunAsync(string mode, string[] args)
    {
        var seconds = IntArg(args, "--seconds", 5);
        var callers = IntArg(args, "--callers", 32);
        var bench = new ServiceBench(mode == "distributed", callers, TimeSpan.FromSeconds(seconds));
        await bench.RunAsync();
        bench.Report(mode, $"make bench{(mode == "distributed" ? "-distributed" : "")}");
        return 0;
    }

    private async Task RunAsync()
    {
        using var redis = _distributed ? RedisServers.StartSingle() : null;
        using var rgw = _distributed ? new RgwServer() : null;
        var s3 = rgw?.Options("bench");
        string[] engines = _distributed
            ?
            [
                "--CacheService:Storage:IndexEngine=redis", $"--CacheService:Redis:Configuration={redis!.Configuration}", RedisServers.EntryKeyArg,
                "--CacheService:Storage:BlobEngine=s3", $"--CacheService:S3:Endpoint={s3!.Endpoint}", $"--CacheService:S3:Bucket={s3.Bucket}",
                $"--CacheService:S3:Prefix={s3.Prefix}", $"--CacheService:S3:AccessKey={s3.AccessKey}", $"--CacheService:S3:SecretKey={s3.SecretKey}",
            ]
            : [];
        using var server = new ServerProcess(engines);
        using var channel = GrpcChannel.ForAddress(server.GrpcAddress);
        var client = new LayerCache.LayerCacheClient(channel);
        var health = new Health.HealthClient(channel);

        Console.Error.WriteLine("preparing entries");
        var (hitKeys, chain) = await PrepareAsync(client);

        Console.Error.WriteLine("lookups");
        var ceiling = await Closed(_ => health.CheckAsync(Liveness).ResponseAsync);
        var cpu0 = server.CpuSeconds();
        var hits = await Closed(i => client.LookupAsync(new LookupRequest { Namespace = Ns, Key = hitKeys[i % HitKeys] }).ResponseAsync);
        var cpuPerThousand = (server.CpuSeconds() - cpu0) / (hits.Operations + (hits.PerSecond * _warmUp.TotalSeconds)) * 1000;
        var misses = await Closed(i => client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key($"miss {i}") }).ResponseAsync);
        var chains = await Closed(_ => client.ResolveChainAsync(chain).ResponseAsync);
        var blob = Layers.Random(1000, 1);
        var commits = await Closed(i => client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key($"commit {i}"), Layer = Layers.Descriptor(blob) }).ResponseAsync);

        LatencyRow("lookup-hit (closed loop)", hits, ceiling, "gRPC health Check (liveness)", 0.6, 2.0);
        LatencyRow("lookup-miss (closed loop)", misses, ceiling, "gRPC health Check (liveness)", null, null);
        var chainRatio = chains.PerSecond * ChainSteps / hits.PerSecond;
        _rows.Add(new BenchRow($"resolve-chain of {ChainSteps} hits", $"{chains.PerSecond * ChainSteps:N0} steps/s", $"{hits.PerSecond:N0} single lookups/s", chainRatio, ">= 10x", chainRatio >= 10));
        LatencyRow("commit (closed loop)", commits, ceiling, "gRPC health Check (liveness)", null, null);

        // Half the lookup capacity just measured: the latency a builder sees on a busy, not saturated, server.
        var rate = Math.Round(hits.PerSecond * 0.5 / 100) * 100;
        var openCeiling = await LoadGenerator.OpenLoopAsync(rate, _warmUp, _duration, _ => health.CheckAsync(Liveness).ResponseAsync);
        var openHits = await LoadGenerator.OpenLoopAsync(rate, _warmUp, _duration, i => client.LookupAsync(new LookupRequest { Namespace = Ns, Key = hitKeys[i % HitKeys] }).ResponseAsync);
        _rows.Add(new BenchRow($"lookup-hit at {rate:N0}/s (open loop), p99 ratio", Latency(openHits), Latency(openCeiling) + " health Check", openHits.P99 / openCeiling.P99, "", null));
        _rows.Add(new BenchRow("server CPU per 1,000 lookup hits", $"{cpuPerThousand:F3} s", "", null, "", null));

        if (redis is not null)
        {
            await IndexCeilingAsync(redis, hits, hitKeys);
        }

        Console.Error.WriteLine("transfers");
        var store = _distributed ? DirectS3(s3!) : null;
        foreach (var megabytes in (int[])[1, 16, 256])
        {
            await TransferRowsAsync(client, store, megabytes);
        }

        var rss = server.PeakResidentBytes() / (1024.0 * 1024);
        _rows.Add(new BenchRow("server peak RSS (VmHWM), 256 MB push included", $"{rss:F0} MB", "", null, "<= 200 MB", rss <= 200));

        if (redis is not null)
        {
            var (perEntry, breakdown) = await RedisIndexBench.MeasureBytesPerEntryAsync(redis, 100_000);
            _rows.Add(new BenchRow("Redis memory per index entry (100,000 entries)", $"{perEntry:F0} B", breakdown, null, "<= 300 B", perEntry <= 300));
        }
    }

    // 1,000 hit keys on one blob, and a chain of 20 cached layer steps.
    private static async Task<(string[] HitKeys, ResolveChainRequest Chain)> PrepareAsync(LayerCache.LayerCacheClient client)
    {
        var blob = Layers.Random(1000, 1);
        await Layers.UploadAsync(client, Ns, blob);
        var keys = Enumerable.Range(0, HitKeys).Select(i => Layers.Key($"hit {i}")).ToArray();
        foreach (var key in keys)
        {
            await client.CommitAsync(new CommitRequest { Namespace = Ns, Key = key, Layer = Layers.Descriptor(blob) });
        }

        var state = Digest.Of("bench base image"u8);
        var chain = new ResolveChainRequest { Namespace = Ns, BaseState = state.Value, Platform = "linux/amd64" };
        for (var i = 0; i < ChainSteps; i++)
        {
            var step = new StepInput { Instruction = $"RUN step {i}" };
            var key = CacheKeyV2.Compute(new StepKeyInput(state, "linux/amd64", step.Instruction, [], null));
            var layer = Layers.Descriptor(blob);
            layer.DiffId = Digest.Of(BitConverter.GetBytes(i)).Value;
            await client.CommitAsync(new CommitRequest { Namespace = Ns, Key = key.Key.Value, Layer = layer });
            state = CacheKeyV2.NextState(state, key, Digest.Parse(layer.DiffId, "diff_id"));
            chain.Steps.Add(step);
        }

        var check = await client.ResolveChainAsync(chain);
        if (check.CachedSteps != ChainSteps)
        {
            throw new InvalidOperationException($"the prepared chain resolves only {check.CachedSteps} of {ChainSteps} steps");
        }

        return (keys, chain);
    }

    // What the index costs: the same lookups through the Redis index in this process (no gRPC,
    // no server), and what Redis costs: one plain HGET per lookup.
    private async Task IndexCeilingAsync(RedisServers redis, LoadResult hits, string[] hitKeys)
    {
        var options = new Index.Redis.RedisIndexOptions { Configuration = redis.Configuration };
        using var connection = await Index.Redis.RedisConnection.ConnectAsync(options);
        var index = new Index.Redis.RedisLayerIndex(connection, options, TimeProvider.System);
        var digests = hitKeys.Select(k => Digest.Parse(k, "key")).ToArray();
        var direct = await Closed(i => index.LookupAsync(Ns, digests[i % HitKeys], CancellationToken.None));
        var db = connection.GetDatabase();
        await db.HashSetAsync("bench:plain", "f", new byte[100]);
        var plain = await Closed(_ => db.HashGetAsync("bench:plain", "f"));
        _rows.Add(new BenchRow("lookup-hit through the server vs the index alone", $"{hits.PerSecond:N0}/s", $"{direct.PerSecond:N0}/s index, {plain.PerSecond:N0}/s plain HGET", hits.PerSecond / direct.PerSecond, "", null));
    }

    private async Task TransferRowsAsync(LayerCache.LayerCacheClient client, S3BlobStore? s3, int megabytes)
    {
        // Each size is pushed as new blobs (distinct namespaces) several times; the median counts.
        var repeats = megabytes >= 256 ? 1 : 5;
        long size = megabytes * (1L << 20);
        var digest = GeneratedBlobStream.DigestOf(size);
        List<TimeSpan> push = [], pull = [], directPush = [], directPull = [];
        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        for (var r = 0; r < repeats; r++)
        {
            var ns = $"{Ns}-{megabytes}-{r}";
            push.Add(await Time(() => PushAsync(client, ns, digest, size)));
            pull.Add(await Time(() => PullAsync(client, ns, digest, size)));
            if (s3 is not null)
            {
                directPush.Add(await Time(() => s3.PutAsync(ns + "-direct", digest, size, new GeneratedBlobStream(size), CancellationToken.None)));
                var url = await s3.PresignDownloadAsync(ns + "-direct", digest, CancellationToken.None);
                directPull.Add(await Time(() => DrainAsync(() => http.GetStreamAsync(url.Url), size)));
            }
            else
            {
                var path = Path.Combine(Path.GetTempPath(), $"cs-bench-{megabytes}-{r}.blob");
                directPush.Add(await Time(() => WriteFileAsync(path, size)));
                directPull.Add(await Time(() => DrainAsync(() => Task.FromResult<Stream>(File.OpenRead(path)), size)));
                File.Delete(path);
            }
        }

        // The targets are set against S3; a local file read comes from the page cache and says
        // only how far the server is from memory speed.
        var store = s3 is null ? "direct file" : "direct S3";
        double Rate(TimeSpan t) => size / 1e6 / t.TotalSeconds;
        var (p, q, dp, dq) = (Median(push), Median(pull), Median(directPush), Median(directPull));
        _rows.Add(new BenchRow($"push {megabytes} MB (median of {repeats})", $"{Rate(p):F0} MB/s", $"{Rate(dp):F0} MB/s {store}", dp / p, s3 is null ? "" : ">= 0.7x", s3 is null ? null : dp / p >= 0.7));
        _rows.Add(new BenchRow($"pull {megabytes} MB (median of {repeats})", $"{Rate(q):F0} MB/s", $"{Rate(dq):F0} MB/s {store}", dq / q, s3 is null ? "" : ">= 0.8x", s3 is null ? null : dq / q >= 0.8));
    }

    private static TimeSpan Median(List<TimeSpan> times) => times.Order().ElementAt(times.Count / 2);

    private static async Task PushAsync(LayerCache.LayerCacheClient client, string ns, Digest digest, long size)
    {
        using var call = client.UploadLayer();
        await call.RequestStream.WriteAsync(new UploadLayerRequest { Header = new UploadHeader { Namespace = ns, Digest = digest.Value, Size = size, MediaType = MediaType } });
        using var source = new GeneratedBlobStream(size);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = source.Read(buffer, 0, buffer.Length)) > 0)
        {
            await call.RequestStream.WriteAsync(new UploadLayerRequest { Chunk = ByteString.CopyFrom(buffer, 0, read) });
        }

        await call.RequestStream.CompleteAsync();
        if ((await call).AlreadyExisted)
        {
            throw new InvalidOperationException("the layer was already stored; the push measured nothing");
        }
    }

    private static async Task PullAsync(LayerCache.LayerCacheClient client, string ns, Digest digest, long size)
    {
        using var call = client.DownloadLayer(new DownloadLayerRequest { Namespace = ns, Digest = digest.Value });
        long total = 0;
        await foreach (var message in call.ResponseStream.ReadAllAsync())
        {
            total += message.Chunk.Length;
        }

        Check(total, size);
    }

    // The store's own cost for the embedded engine: the same bytes to a file on the same disk,
    // hashed and flushed as the filesystem store does.
    private static async Task WriteFileAsync(string path, long size)
    {
        await using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using var source = new GeneratedBlobStream(size);
        var buffer = new byte[1 << 20];
        int read;
        while ((read = source.Read(buffer, 0, buffer.Length)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            await file.WriteAsync(buffer.AsMemory(0, read));
        }

        file.Flush(flushToDisk: true);
    }

    private static async Task DrainAsync(Func<Task<Stream>> open, long size)
    {
        await using var stream = await open();
        var buffer = new byte[1 << 20];
        long total = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
        {
            total += read;
        }

        Check(total, size);
    }

    private static S3BlobStore DirectS3(S3BlobOptions options)
    {
        var store = new S3BlobStore(S3BlobStore.CreateClient(options), new HttpClient { Timeout = Timeout.InfiniteTimeSpan }, options);
        store.EnsureBucketAsync(CancellationToken.None).GetAwaiter().GetResult();
        return store;
    }

    private Task<LoadResult> Closed(Func<long, Task> operation) => LoadGenerator.ClosedLoopAsync(_callers, _warmUp, _duration, operation);

    private void LatencyRow(string scenario, LoadResult result, LoadResult ceiling, string ceilingName, double? minRatio, double? maxP99Ratio)
    {
        var ratio = result.PerSecond / ceiling.PerSecond;
        var target = minRatio is null ? "" : $">= {minRatio}x, p99 <= {maxP99Ratio}x";
        bool? met = minRatio is null ? null : ratio >= minRatio && result.P99 <= maxP99Ratio * ceiling.P99;
        _rows.Add(new BenchRow($"{scenario}, {_callers} callers", $"{result.PerSecond:N0}/s, {Latency(result)}", $"{ceiling.PerSecond:N0}/s, {Latency(ceiling)} {ceilingName}", ratio, target, met));
    }

    private static string Latency(LoadResult r) =>
        string.Create(CultureInfo.InvariantCulture, $"p50 {r.P50:F2} / p99 {r.P99:F2} / p99.9 {r.P999:F2} ms");

    private static void Check(long total, long size)
    {
        if (total != size)
        {
            throw new InvalidOperationException($"moved {total} bytes, expected {size}");
        }
    }

    private static async Task<TimeSpan> Time(Func<Task> work)
    {
        var clock = Stopwatch.StartNew();
        await work();
        return clock.Elapsed;
    }

    private void Report(string mode, string command)
    {
        var title = $"CacheService benchmark, {mode} ({(_distributed ? "Redis + Ceph RGW" : "SQLite + filesystem")}), {_callers} callers, {_duration.TotalSeconds:F0} s a run";
        Console.WriteLine($"## {title}");
        Console.WriteLine();
        Console.WriteLine("| scenario | result | ceiling (same run) | ratio | target |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var row in _rows)
        {
            var ratio = row.Ratio is { } r ? r.ToString("F2", CultureInfo.InvariantCulture) : "";
            var met = row.Met switch { true => " (met)", false => " (missed)", _ => "" };
            Console.WriteLine($"| {row.Scenario} | {row.Result} | {row.Ceiling} | {ratio} | {row.Target}{met} |");
        }

        var results = Path.Combine(ServiceScripts.RepositoryRoot, "bench", "results");
        Directory.CreateDirectory(results);
        var file = Path.Combine(results, $"{mode}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(new
        {
            title,
            command,
            measuredAt = DateTimeOffset.UtcNow,
            machine = new { Environment.ProcessorCount, os = System.Runtime.InteropServices.RuntimeInformation.OSDescription, dotnet = Environment.Version.ToString() },
            rows = _rows,
        }, Indented));
        Console.WriteLine();
        Console.WriteLine($"written to {Path.GetRelativePath(ServiceScripts.RepositoryRoot, file)}");
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
