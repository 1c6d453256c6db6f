using System.Collections.Concurrent;
using CacheService.Core;
using CacheService.Core.Index;
using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>
/// <see cref="ILayerIndex"/> on Redis or Redis Cluster: the shared index of a CI farm's replicas.
/// </summary>
/// <remarks>
/// <para>Files by concern: this one holds the contract's calls; <see cref="RedisKeyLayout"/> the
/// key names; <see cref="Scripts"/> the Lua; <see cref="RedisScriptRunner"/> running it and
/// sorting failures; <see cref="RedisConnection"/> the multiplexer; <c>RedisScans.cs</c> the
/// reads that walk every bucket (repair, listings, verify); <see cref="EntryCodec"/> the bytes of
/// an entry.</para>
/// <para>Atomicity: every change of a namespace is one Lua script on the namespace's single slot;
/// commit and eviction run in the same script. Scans that must not block Redis read outside
/// scripts and then change entries through a script that re-checks each one.</para>
/// <para>Failure: connection loss, timeouts and a Redis that is loading or has no quorum surface as
/// <see cref="BackendUnavailableException"/>. The multiplexer reconnects by itself; commands
/// issued while it is disconnected fail at once instead of queuing, so a dead Redis costs a build
/// a fast miss rather than a wait. One <see cref="IConnectionMultiplexer"/> serves the process.</para>
/// </remarks>
public sealed partial class RedisLayerIndex : ILayerIndex
{
    private const int DeleteBatchSize = 500;
    private static readonly RedisValue[] UsageFields = ["lookups", "hits", "entries", "bytes", "evictions", "up", "down"];

    private readonly RedisKeyLayout _layout;
    private readonly RedisScriptRunner _scripts;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, bool> _registered = new(StringComparer.Ordinal);

    /// <summary>An index on <paramref name="redis"/>, under <see cref="RedisIndexOptions.KeyPrefix"/>.</summary>
    public RedisLayerIndex(IConnectionMultiplexer redis, RedisIndexOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _layout = new RedisKeyLayout(options.KeyPrefix);
        _scripts = new RedisScriptRunner(redis, _layout);
        _time = time;
    }

    private IDatabase Db => _scripts.Db;

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
        var result = await _scripts.RunAsync(ns, Scripts.Lookup, [EntryCodec.Raw(key), Now(), counted ? "1" : "0"], cancellationToken);
        if (result.IsNull)
        {
            return null;
        }

        var parts = (RedisResult[])result!;
        return EntryCodec.Decode(key, (byte[])parts[0]!, (string?)parts[1] ?? "");
    }

    /// <inheritdoc />
    public Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken) =>
        WriteEntryAsync(ns, Scripts.Commit, entry, budget, [], cancellationToken);

    /// <inheritdoc />
    public Task<CommitOutcome> PutTagAsync(string ns, string tag, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken) =>
        WriteEntryAsync(ns, Scripts.PutTag, entry, budget, [tag], cancellationToken);

    private async Task<CommitOutcome> WriteEntryAsync(string ns, string script, NewEntry entry, NamespaceBudget budget, RedisValue[] extra, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ArgumentNullException.ThrowIfNull(budget);
        var distinct = entry with { Blobs = entry.Blobs.DistinctBy(b => b.Digest).ToList() };
        var value = EntryCodec.Encode(distinct, _time.GetUtcNow());

        // Registering first means the collector never misses a namespace that has entries. A
        // write registers every time (writes are not the hot path), so a registry Redis lost in a
        // flush or a failover is rebuilt by the next commit, not only by the next process.
        await RegisterAsync(ns, cancellationToken, always: true);
        var parts = (RedisResult[])(await _scripts.RunAsync(ns, script,
            [EntryCodec.Raw(entry.Key), value, budget.HighWatermarkBytes, budget.LowWatermarkBytes, Now(), entry.Preimage, budget.MaxEntries, .. extra], cancellationToken))!;
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
    public async Task<IReadOnlyList<TagEntry>> ListTagsAsync(string ns, string? after, int limit, CancellationToken cancellationToken)
    {
        if (limit <= 0)
        {
            return [];
        }

        var parts = (RedisResult[])(await _scripts.RunAsync(ns, Scripts.ListTags, [after ?? "", limit], cancellationToken))!;
        var tags = new List<TagEntry>(parts.Length / 3);
        for (var i = 0; i + 2 < parts.Length; i += 3)
        {
            var key = EntryCodec.FromRaw((byte[])parts[i + 1]!);
            tags.Add(new TagEntry((string)parts[i]!, key, EntryCodec.Decode(key, (byte[])parts[i + 2]!, "").Layer));
        }

        return tags;
    }

    /// <inheritdoc />
    public async Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        long removed = 0;
        foreach (var batch in keys.Chunk(DeleteBatchSize))
        {
            removed += (long)await _scripts.RunAsync(ns, Scripts.Delete, [Now(), .. batch.Select(k => (RedisValue)EntryCodec.Raw(k))], cancellationToken);
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
            batch = (long)await _scripts.RunAsync(ns, Scripts.DeleteBatch, [Now(), DeleteBatchSize], cancellationToken);
            removed += batch;
        }
        while (batch == DeleteBatchSize);

        return removed;
    }

    /// <inheritdoc />
    public async Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken)
    {
        await RegisterAsync(ns, cancellationToken);
        await _scripts.RunAsync(ns, Scripts.RecordUsage, [delta.Lookups, delta.Hits, delta.BytesUploaded, delta.BytesDownloaded], cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken)
    {
        var members = await RedisScriptRunner.GuardAsync(Db.SetMembersAsync(_layout.Namespaces), cancellationToken);
        return [.. members.Select(m => (string)m!).Order(StringComparer.Ordinal)];
    }

    /// <inheritdoc />
    public async Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken)
    {
        var values = await RedisScriptRunner.GuardAsync(Db.HashGetAsync(_layout.MetaKey(ns), UsageFields), cancellationToken);
        long At(int i) => values[i].IsNull ? 0 : (long)values[i];
        return new NamespaceUsage(At(0), At(1), At(2), At(3), At(4), At(5), At(6));
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<CollectableBlob>> TakeCollectableBlobsAsync(DateTimeOffset unreferencedSince, int max, CancellationToken cancellationToken)
    {
        var due = new List<CollectableBlob>();
        foreach (var ns in await ListNamespacesAsync(cancellationToken))
        {
            var blobs = (RedisResult[])(await _scripts.RunAsync(ns, Scripts.TakeCollectable,
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
        (long)await _scripts.RunAsync(ns, Scripts.IsBlobInUse, [EntryCodec.Raw(blob)], cancellationToken) == 1;

    // Adds the namespace to the registry the collector and the status sampler walk. The registry
    // lives outside the namespace's slot, so it cannot join a script; it is written once per
    // namespace per process, not on every lookup of the hot path.
    private async Task RegisterAsync(string ns, CancellationToken cancellationToken, bool always = false)
    {
        if (!always && _registered.ContainsKey(ns))
        {
            return;
        }

        await RedisScriptRunner.GuardAsync(Db.SetAddAsync(_layout.Namespaces, ns), cancellationToken);
        _registered[ns] = true;
    }

    private RedisValue Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();
}
