using System.Collections.Concurrent;
using System.Globalization;
using CacheService.Core;
using CacheService.Core.Index;
using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>
/// <see cref="ILayerIndex"/> on Redis or Redis Cluster: the shared index of a CI farm's replicas.
/// </summary>
/// <remarks>
/// <para>Atomicity: every change of a namespace is one Lua script (<see cref="Scripts"/>) on the
/// namespace's single slot; commit and eviction run in the same script. Scans that must not block
/// Redis (repair, verify) read outside scripts and then change entries through a script that
/// re-checks each one.</para>
/// <para>Failure: connection loss, timeouts and a Redis that is loading or has no quorum surface as
/// <see cref="BackendUnavailableException"/>. The multiplexer reconnects by itself; commands
/// issued while it is disconnected fail at once instead of queuing, so a dead Redis costs a build
/// a fast miss rather than a wait.</para>
/// <para>One <see cref="IConnectionMultiplexer"/> is shared for the life of the process.</para>
/// </remarks>
public sealed class RedisLayerIndex(IConnectionMultiplexer redis, RedisIndexOptions options, TimeProvider time) : ILayerIndex
{
    private const int DeleteBatchSize = 500;
    private const int BucketCount = 4096;
    private static readonly string[] UsageFields = ["lookups", "hits", "entries", "bytes", "evictions", "up", "down"];

    private readonly ConcurrentDictionary<string, bool> _registered = new(StringComparer.Ordinal);

    private IDatabase Db => redis.GetDatabase();

    /// <summary>Connects with the settings a cache needs: start even when Redis is down, fail fast while it is.</summary>
    public static async Task<IConnectionMultiplexer> ConnectAsync(RedisIndexOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = ConfigurationOptions.Parse(options.Configuration);
        config.AbortOnConnectFail = false;
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.ConnectTimeout = (int)options.ConnectTimeout.TotalMilliseconds;
        config.AsyncTimeout = (int)options.CommandTimeout.TotalMilliseconds;
        config.SyncTimeout = (int)options.CommandTimeout.TotalMilliseconds;
        config.ClientName ??= "cacheservice";
        return await ConnectionMultiplexer.ConnectAsync(config);
    }

    /// <inheritdoc />
    public Task<IndexEntry?> LookupAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        LookupAsync(ns, key, counted: false, cancellationToken);

    /// <inheritdoc />
    public async Task<IndexEntry?> LookupAndCountAsync(string ns, Digest key, CancellationToken cancellationToken)
    {
        await RegisterAsync(ns, cancellationToken);
        return await LookupAsync(ns, key, counted: true, cancellationToken);
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<ChainHit>> WalkAsync(IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken) =>
        StepwiseWalk.WalkAsync(this, namespaces, first, nextKey, cancellationToken); // a script cannot derive keys: SHA-256 is not in Redis's Lua

    private async Task<IndexEntry?> LookupAsync(string ns, Digest key, bool counted, CancellationToken cancellationToken)
    {
        var result = await RunAsync(ns, Scripts.Lookup, [EntryCodec.Raw(key), Now(), counted ? "1" : "0"], cancellationToken);
        if (result.IsNull)
        {
            return null;
        }

        var parts = (RedisResult[])result!;
        return EntryCodec.Decode(key, (byte[])parts[0]!, (string?)parts[1] ?? "");
    }

    /// <inheritdoc />
    public async Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(budget);
        var distinct = entry with { Blobs = entry.Blobs.DistinctBy(b => b.Digest).ToList() };
        var value = EntryCodec.Encode(distinct, time.GetUtcNow());

        // Registering first means the collector never misses a namespace that has entries.
        await RegisterAsync(ns, cancellationToken);
        var parts = (RedisResult[])(await RunAsync(ns, Scripts.Commit,
            [EntryCodec.Raw(entry.Key), value, budget.HighWatermarkBytes, budget.LowWatermarkBytes, Now(), entry.Preimage], cancellationToken))!;
        var status = (int)parts[0];
        if (status < 0)
        {
            throw new QuotaExceededException(
                $"the entry's blobs ({distinct.Blobs.Sum(b => b.Size)} bytes) exceed the budget of namespace {ns} ({budget.HighWatermarkBytes} bytes)");
        }

        var stored = EntryCodec.Decode(entry.Key, (byte[])parts[1]!, (string?)parts[2] ?? "");
        var evicted = parts.Skip(3).Select(r => EntryCodec.FromRaw((byte[])r!)).ToList();
        return new CommitOutcome(status == 1, stored, evicted);
    }

    /// <inheritdoc />
    public async Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        long removed = 0;
        foreach (var batch in keys.Chunk(DeleteBatchSize))
        {
            removed += (long)await RunAsync(ns, Scripts.Delete, [Now(), .. batch.Select(k => (RedisValue)EntryCodec.Raw(k))], cancellationToken);
        }

        return removed;
    }

    /// <inheritdoc />
    public async Task<long> DeleteAllAsync(string ns, CancellationToken cancellationToken)
    {
        long removed = 0;
        long batch;
        do
        {
            batch = (long)await RunAsync(ns, Scripts.DeleteBatch, [Now(), DeleteBatchSize], cancellationToken);
            removed += batch;
        }
        while (batch == DeleteBatchSize);

        return removed;
    }

    /// <inheritdoc />
    public async Task<long> RemoveEntriesReferencingAsync(string ns, Digest blob, CancellationToken cancellationToken)
    {
        var raw = EntryCodec.Raw(blob);
        var candidates = (await ReadEntriesAsync(ns, cancellationToken))
            .Where(e => e.Entry.Blobs.Any(b => b.Digest == blob))
            .Select(e => (RedisValue)EntryCodec.Raw(e.Entry.Key))
            .ToList();
        if (candidates.Count == 0)
        {
            return 0;
        }

        return (long)await RunAsync(ns, Scripts.DeleteReferencing, [Now(), raw, .. candidates], cancellationToken);
    }

    /// <inheritdoc />
    public async Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken)
    {
        await RegisterAsync(ns, cancellationToken);
        await RunAsync(ns, Scripts.RecordUsage, [delta.Lookups, delta.Hits, delta.BytesUploaded, delta.BytesDownloaded], cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken)
    {
        var entries = await ReadEntriesAsync(ns, cancellationToken);
        var preimages = (await Guard(Db.HashGetAllAsync(Prefix(ns) + "pre"), cancellationToken))
            .ToDictionary(p => EntryCodec.FromRaw((byte[])p.Name!), p => (string)p.Value!);
        return [.. entries.Select(e => e.Entry with { Preimage = preimages.GetValueOrDefault(e.Entry.Key, "") })];
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken)
    {
        var members = await Guard(Db.SetMembersAsync(RegistryKey), cancellationToken);
        return [.. members.Select(m => (string)m!).Order(StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    public async Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken)
    {
        var values = await Guard(Db.HashGetAsync(MetaKey(ns), UsageFields.Select(f => (RedisValue)f).ToArray()), cancellationToken);
        long At(int i) => values[i].IsNull ? 0 : (long)values[i];
        return new NamespaceUsage(At(0), At(1), At(2), At(3), At(4), At(5), At(6));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CollectableBlob>> TakeCollectableBlobsAsync(DateTimeOffset unreferencedSince, int max, CancellationToken cancellationToken)
    {
        var due = new List<CollectableBlob>();
        foreach (var member in await Guard(Db.SetMembersAsync(RegistryKey), cancellationToken))
        {
            var ns = (string)member!;
            var blobs = (RedisResult[])(await RunAsync(ns, Scripts.TakeCollectable,
                [unreferencedSince.ToUnixTimeMilliseconds(), max - due.Count], cancellationToken))!;
            due.AddRange(blobs.Select(b => new CollectableBlob(ns, EntryCodec.FromRaw((byte[])b!))));
            if (due.Count >= max)
            {
                break;
            }
        }

        return due;
    }

    /// <inheritdoc />
    public async Task<bool> IsBlobInUseAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        (long)await RunAsync(ns, Scripts.IsBlobInUse, [EntryCodec.Raw(blob)], cancellationToken) == 1;

    /// <inheritdoc />
    /// <remarks>Reads the namespace outside a script, so run it while the namespace is quiet.</remarks>
    public async Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var entries = await ReadEntriesAsync(ns, cancellationToken);
        var refs = await ReadReferencesAsync(ns, cancellationToken);
        var usage = await GetUsageAsync(ns, cancellationToken);
        var lruSize = await CountLruMembersAsync(ns, cancellationToken);

        var referencing = new Dictionary<Digest, (long Count, long Size)>();
        foreach (var (entry, _) in entries)
        {
            foreach (var blob in entry.Blobs)
            {
                referencing[blob.Digest] = (referencing.GetValueOrDefault(blob.Digest).Count + 1, blob.Size);
            }
        }

        if (usage.Entries != entries.Count) problems.Add($"entry counter {usage.Entries} != {entries.Count} entries");
        if (lruSize != entries.Count) problems.Add($"LRU set has {lruSize} members for {entries.Count} entries");
        var bytes = referencing.Values.Sum(r => r.Size);
        if (usage.StoredBytes != bytes) problems.Add($"byte counter {usage.StoredBytes} != {bytes} bytes of referenced blobs");
        foreach (var (digest, (count, _)) in referencing)
        {
            var counted = refs.GetValueOrDefault(digest);
            if (counted != count) problems.Add($"blob {digest} has reference count {counted} but {count} referencing entries");
        }

        foreach (var (digest, counted) in refs)
        {
            if (!referencing.ContainsKey(digest)) problems.Add($"blob {digest} has reference count {counted} but no referencing entry");
        }

        return problems;
    }

    // Every namespace that ever had an entry; outside any namespace's slot.
    private RedisKey RegistryKey => options.KeyPrefix + "namespaces";

    // Adds the namespace to the registry the collector and the status sampler walk. The registry
    // lives outside the namespace's slot, so it cannot join a script; it is written once per
    // namespace per process, not on every lookup of the hot path.
    private async Task RegisterAsync(string ns, CancellationToken cancellationToken)
    {
        if (_registered.ContainsKey(ns))
        {
            return;
        }

        await Guard(Db.SetAddAsync(RegistryKey, ns), cancellationToken);
        _registered[ns] = true;
    }

    private string Prefix(string ns) => $"{options.KeyPrefix}{{{ns}}}:";

    private RedisKey MetaKey(string ns) => Prefix(ns) + "m";

    private RedisValue Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    // EVALSHA first: the scripts are a few KB each, and sending their text with every lookup
    // costs more than running them. A node that does not know a script yet (new, restarted,
    // another cluster master) answers NOSCRIPT, and EVAL teaches it.
    private async Task<RedisResult> RunAsync(string ns, string script, RedisValue[] args, CancellationToken cancellationToken)
    {
        RedisKey[] keys = [MetaKey(ns)];
        RedisValue[] values = [Prefix(ns), .. args];
        try
        {
            return await Guard(Db.ScriptEvaluateAsync(Scripts.Sha1(script), keys, values), cancellationToken);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await Guard(Db.ScriptEvaluateAsync(script, keys, values), cancellationToken);
        }
    }

    // Reads every entry bucket of a namespace, pipelined, without blocking Redis in a script.
    private async Task<List<(IndexEntry Entry, byte[] Raw)>> ReadEntriesAsync(string ns, CancellationToken cancellationToken)
    {
        var found = new List<(IndexEntry, byte[])>();
        foreach (var bucket in await ReadBucketsAsync(ns, "e:", cancellationToken))
        {
            foreach (var field in bucket)
            {
                var raw = (byte[])field.Name!;
                found.Add((EntryCodec.Decode(EntryCodec.FromRaw(raw), (byte[])field.Value!, ""), raw));
            }
        }

        return found;
    }

    private async Task<long> CountLruMembersAsync(string ns, CancellationToken cancellationToken)
    {
        var prefix = Prefix(ns) + "l:";
        var counts = Enumerable.Range(0, BucketCount)
            .Select(b => Db.SortedSetLengthAsync(prefix + b.ToString("x3", CultureInfo.InvariantCulture)))
            .ToList();
        return (await Guard(Task.WhenAll(counts), cancellationToken)).Sum();
    }

    private async Task<Dictionary<Digest, long>> ReadReferencesAsync(string ns, CancellationToken cancellationToken) =>
        (await ReadBucketsAsync(ns, "r:", cancellationToken))
            .SelectMany(b => b)
            .ToDictionary(f => EntryCodec.FromRaw((byte[])f.Name!), f => (long)f.Value);

    private async Task<HashEntry[][]> ReadBucketsAsync(string ns, string kind, CancellationToken cancellationToken)
    {
        var prefix = Prefix(ns) + kind;
        var reads = Enumerable.Range(0, BucketCount)
            .Select(b => Db.HashGetAllAsync(prefix + b.ToString("x3", CultureInfo.InvariantCulture)))
            .ToList();
        return await Guard(Task.WhenAll(reads), cancellationToken);
    }

    // Maps Redis outages to BackendUnavailableException and honours the caller's cancellation
    // (StackExchange.Redis commands take no token; their own timeout bounds them anyway).
    private static async Task<T> Guard<T>(Task<T> command, CancellationToken cancellationToken)
    {
        try
        {
            return await command.WaitAsync(cancellationToken);
        }
        catch (Exception e) when (IsOutage(e))
        {
            throw new BackendUnavailableException("index", e);
        }
    }

    private static bool IsOutage(Exception e) => e switch
    {
        RedisConnectionException or RedisTimeoutException => true,
        RedisServerException server => server.Message.StartsWith("LOADING", StringComparison.Ordinal)
            || server.Message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
            || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("READONLY", StringComparison.Ordinal),
        _ => false,
    };
}
