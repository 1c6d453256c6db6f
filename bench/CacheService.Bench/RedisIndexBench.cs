using System.Diagnostics;
using System.Globalization;
using CacheService.Core;
using CacheService.Core.Index;
using CacheService.Index.Redis;
using CacheService.Testing;
using StackExchange.Redis;

namespace CacheService.Bench;

/// <summary>
/// Redis memory per index entry and lookup throughput through the index alone, beside the same
/// number of plain HGETs on the same Redis (what Redis itself costs), in one run.
/// </summary>
internal static class RedisIndexBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        var entries = IntArg(args, "--entries", 100_000);
        var seconds = IntArg(args, "--seconds", 5);
        var concurrency = IntArg(args, "--concurrency", 32);
        using var redis = RedisServers.StartSingle();
        var options = new RedisIndexOptions { Configuration = redis.Configuration + ",allowAdmin=true" };
        using var connection = await RedisLayerIndex.ConnectAsync(options);
        var index = new RedisLayerIndex(connection, options, TimeProvider.System);
        var server = connection.GetServer(connection.GetEndPoints()[0]);
        const string ns = "bench/main";
        var budget = new NamespaceBudget(long.MaxValue, long.MaxValue);

        var keys = Enumerable.Range(0, entries).Select(i => Digest.Of(BitConverter.GetBytes(i))).ToArray();
        var before = await UsedMemoryAsync(server);
        var fill = Stopwatch.StartNew();
        await ForEachAsync(entries, concurrency, i =>
        {
            var layer = new LayerDescriptor(Digest.Of(BitConverter.GetBytes(-i - 1)), Digest.Of(BitConverter.GetBytes(-i - 2_000_000_000)), 1_000_000 + i, "application/vnd.oci.image.layer.v1.tar+gzip");
            return index.CommitAsync(ns, NewEntry.ForLayer(keys[i], layer), budget, CancellationToken.None);
        });
        fill.Stop();
        var after = await UsedMemoryAsync(server);
        var perEntry = (double)(after - before) / entries;

        var indexLookups = await ThroughputAsync(seconds, concurrency, i => index.LookupAsync(ns, keys[i % entries], CancellationToken.None));
        var db = connection.GetDatabase();
        await db.HashSetAsync("bench:plain", "f", new byte[100]);
        var plainGets = await ThroughputAsync(seconds, concurrency, _ => db.HashGetAsync("bench:plain", "f"));

        var verify = await index.VerifyAsync(ns, CancellationToken.None);
        var breakdown = await BreakdownAsync(db, "cs:{" + ns + "}:", entries);
        Console.WriteLine($"## Redis index ({entries:N0} entries, {concurrency} concurrent callers, {seconds} s per throughput run)");
        Console.WriteLine();
        Console.WriteLine("| measure | result | ceiling | ratio | target |");
        Console.WriteLine("|---|---|---|---|---|");
        Console.WriteLine($"| Redis memory per entry (INFO used_memory) | {perEntry:F0} B | | | <= 300 B |");
        Console.WriteLine($"| commits (fill) | {entries / fill.Elapsed.TotalSeconds:N0}/s | | | |");
        Console.WriteLine($"| lookups through the index (Lua: read + touch LRU) | {indexLookups:N0}/s | {plainGets:N0}/s plain HGET | {indexLookups / plainGets:F2} | |");
        Console.WriteLine();
        Console.WriteLine($"Per entry by structure (MEMORY USAGE): {breakdown}");
        Console.WriteLine(verify.Count == 0 ? "verify: consistent" : "verify: " + string.Join("; ", verify));
        return verify.Count == 0 ? 0 : 1;
    }

    // Where the bytes go: entry buckets, reference buckets and the LRU set, per entry.
    private static async Task<string> BreakdownAsync(IDatabase db, string prefix, int entries)
    {
        async Task<long> Usage(string key) => (long?)await db.ExecuteAsync("MEMORY", "USAGE", key, "SAMPLES", "0") ?? 0;
        long entryBuckets = 0, refBuckets = 0, lru = await Usage(prefix + "lrumin");
        for (var b = 0; b < 4096; b++)
        {
            var id = b.ToString("x3", CultureInfo.InvariantCulture);
            entryBuckets += await Usage(prefix + "e:" + id);
            refBuckets += await Usage(prefix + "r:" + id);
            lru += await Usage(prefix + "l:" + id);
        }

        return $"entry buckets {entryBuckets / (double)entries:F0} B, reference buckets {refBuckets / (double)entries:F0} B, LRU set {lru / (double)entries:F0} B";
    }

    private static async Task<long> UsedMemoryAsync(IServer server)
    {
        var info = await server.InfoAsync("memory");
        return long.Parse(info.SelectMany(g => g).First(p => p.Key == "used_memory").Value, CultureInfo.InvariantCulture);
    }

    private static async Task ForEachAsync(int count, int concurrency, Func<int, Task> work)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                await work(i);
            }
        }));
    }

    // Closed loop: `concurrency` callers, each issuing its next call when the last one answered.
    private static async Task<double> ThroughputAsync(int seconds, int concurrency, Func<int, Task> call)
    {
        for (var i = 0; i < 2000; i++)
        {
            await call(i); // warm-up
        }

        long done = 0;
        var stop = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(seconds);
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async worker =>
        {
            var i = worker;
            while (stop.Elapsed < until)
            {
                await call(i);
                i += concurrency;
                Interlocked.Increment(ref done);
            }
        }));
        return done / stop.Elapsed.TotalSeconds;
    }

    private static int IntArg(string[] args, string name, int fallback)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? int.Parse(args[at + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
