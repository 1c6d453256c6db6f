using System.Globalization;
using CacheService.Core;
using CacheService.Core.Index;
using CacheService.Index.Redis;
using CacheService.Testing;
using StackExchange.Redis;

namespace CacheService.Bench;

/// <summary>Redis memory per index entry, and where it goes.</summary>
internal static class RedisIndexBench
{
    /// <summary>
    /// Commits <paramref name="entries"/> entries through the index on <paramref name="redis"/> and
    /// returns the growth of INFO used_memory per entry, with where the bytes went.
    /// </summary>
    public static async Task<(double BytesPerEntry, string Breakdown)> MeasureBytesPerEntryAsync(RedisServers redis, int entries)
    {
        var options = new RedisIndexOptions { Configuration = redis.Configuration + ",allowAdmin=true" };
        using var connection = await RedisConnection.ConnectAsync(options);
        var index = new RedisLayerIndex(connection, options, TimeProvider.System);
        var server = connection.GetServer(connection.GetEndPoints()[0]);
        const string ns = "bench/memory";
        var budget = new NamespaceBudget(long.MaxValue, long.MaxValue);
        var keys = Enumerable.Range(0, entries).Select(i => Digest.Of(BitConverter.GetBytes(i))).ToArray();
        var before = await UsedMemoryAsync(server);
        await ForEachAsync(entries, 32, i =>
        {
            var layer = new LayerDescriptor(Digest.Of(BitConverter.GetBytes(-i - 1)), Digest.Of(BitConverter.GetBytes(-i - 2_000_000_000)), 1_000_000 + i, "application/vnd.oci.image.layer.v1.tar+gzip");
            return index.CommitAsync(ns, NewEntry.ForLayer(keys[i], layer), budget, CancellationToken.None);
        });
        var after = await UsedMemoryAsync(server);
        var verify = await index.VerifyAsync(ns, CancellationToken.None);
        if (verify.Count > 0)
        {
            throw new InvalidOperationException("the index is inconsistent after the fill: " + string.Join("; ", verify));
        }

        return ((double)(after - before) / entries, await BreakdownAsync(connection.GetDatabase(), "cs:{" + ns + "}:", entries));
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
}
