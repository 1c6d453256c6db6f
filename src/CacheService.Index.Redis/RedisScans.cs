using CacheService.Core;
using CacheService.Core.Index;
using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>
/// The reads that walk every bucket of a namespace, pipelined and outside scripts so they never
/// block Redis: repair, the entry listing and the invariant check. Run them off the hot path.
/// </summary>
public sealed partial class RedisLayerIndex
{
    /// <inheritdoc />
    public async Task<long> RemoveEntriesReferencingAsync(string ns, Digest blob, CancellationToken cancellationToken)
    {
        var candidates = (await ReadEntriesAsync(ns, cancellationToken))
            .Where(e => e.Blobs.Any(b => b.Digest == blob))
            .Select(e => (RedisValue)EntryCodec.Raw(e.Key))
            .ToList();
        if (candidates.Count == 0)
        {
            return 0;
        }

        // The script re-checks each candidate: it may have changed since the read.
        return (long)await _scripts.RunAsync(ns, Scripts.DeleteReferencing, [Now(), EntryCodec.Raw(blob), .. candidates], cancellationToken);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken)
    {
        var entries = await ReadEntriesAsync(ns, cancellationToken);
        var preimages = (await RedisScriptRunner.GuardAsync(Db.HashGetAllAsync(_layout.Prefix(ns) + RedisKeyLayout.Preimages), cancellationToken))
            .ToDictionary(p => EntryCodec.FromRaw((byte[])p.Name!), p => (string)p.Value!);
        return [.. entries.Select(e => e with { Preimage = preimages.GetValueOrDefault(e.Key, "") })];
    }

    /// <inheritdoc />
    /// <remarks>Reads the namespace outside a script, so run it while the namespace is quiet.</remarks>
    public async Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        var entries = await ReadEntriesAsync(ns, cancellationToken);
        var refs = (await ReadBucketsAsync(ns, RedisKeyLayout.References, cancellationToken))
            .ToDictionary(f => EntryCodec.FromRaw((byte[])f.Name!), f => (long)f.Value);
        var usage = await GetUsageAsync(ns, cancellationToken);
        var lruSize = (await RedisScriptRunner.GuardAsync(
            Task.WhenAll(_layout.Buckets(ns, RedisKeyLayout.Lru).Select(b => Db.SortedSetLengthAsync(b))), cancellationToken)).Sum();

        var referencing = new Dictionary<Digest, (long Count, long Size)>();
        foreach (var blob in entries.SelectMany(e => e.Blobs))
        {
            referencing[blob.Digest] = (referencing.GetValueOrDefault(blob.Digest).Count + 1, blob.Size);
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

    private async Task<List<IndexEntry>> ReadEntriesAsync(string ns, CancellationToken cancellationToken) =>
        [.. (await ReadBucketsAsync(ns, RedisKeyLayout.Entries, cancellationToken))
            .Select(f => EntryCodec.Decode(EntryCodec.FromRaw((byte[])f.Name!), (byte[])f.Value!, ""))];

    private async Task<IEnumerable<HashEntry>> ReadBucketsAsync(string ns, string kind, CancellationToken cancellationToken) =>
        (await RedisScriptRunner.GuardAsync(Task.WhenAll(_layout.Buckets(ns, kind).Select(b => Db.HashGetAllAsync(b))), cancellationToken)).SelectMany(b => b);
}
