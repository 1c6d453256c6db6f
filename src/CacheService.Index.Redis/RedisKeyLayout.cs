using System.Globalization;
using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>
/// Where a namespace's data lives in Redis. The key suffixes are the one source of truth: the Lua
/// in <see cref="Scripts"/> is generated from them, so C# and Lua cannot disagree on a name.
/// </summary>
/// <remarks>
/// <para>Per namespace <c>ns</c>, all under one hash tag so a namespace lives in one Redis Cluster
/// slot and a script may touch any of its keys (<c>{p}</c> is <c>&lt;prefix&gt;{ns}:</c>):</para>
/// <code>
/// {p}m            hash    clock, entries, bytes, evictions, lookups, hits, up, down
/// {p}e:&lt;bbb&gt;      hash    entry buckets: raw 32-byte key -> EntryCodec value
/// {p}l:&lt;bbb&gt;      zset    LRU buckets: raw key, scored by the logical clock of its last use
/// {p}lrumin       zset    bucket id (bbb), scored by the lowest score in that LRU bucket
/// {p}r:&lt;bbb&gt;      hash    reference buckets: raw 32-byte blob digest -> reference count
/// {p}gc           zset    unreferenced blobs, scored by when (ms) their last reference went
/// {p}pre          hash    raw key -> preimage JSON, only for keys committed with their inputs
/// {p}tags         zset    tag names, all scored 0, so ZRANGEBYLEX pages them in order
/// {p}tagkey       hash    tag -> raw key of its entry
/// {p}tagof        hash    raw key -> tag, so removing an entry removes its tag
/// </code>
/// <para><c>bbb</c> is the first 12 bits of the raw key or digest in hex. Bucketing keeps each
/// hash and sorted set small enough for Redis's compact listpack encoding (with
/// <c>hash-max-listpack-value</c> &gt;= 128), which keeps an entry under 300 bytes; one big sorted
/// set for the LRU alone would cost ~136 bytes an entry. The LRU stays exact: the oldest entry is
/// the lowest member of the bucket that <c>lrumin</c> ranks first.</para>
/// <para>Outside every namespace's slot: <c>&lt;prefix&gt;namespaces</c>, the set of namespaces that
/// ever had an entry or usage, which the collector and the status sampler walk.</para>
/// </remarks>
internal sealed class RedisKeyLayout(string keyPrefix)
{
    public const string Meta = "m";
    public const string Entries = "e:";
    public const string Lru = "l:";
    public const string LruMin = "lrumin";
    public const string References = "r:";
    public const string Collectable = "gc";
    public const string Preimages = "pre";
    public const string Tags = "tags";
    public const string TagKeys = "tagkey";
    public const string TagOf = "tagof";

    /// <summary>Buckets per bucketed structure (12 bits).</summary>
    public const int BucketCount = 4096;

    /// <summary>The set of every namespace.</summary>
    public RedisKey Namespaces => keyPrefix + "namespaces";

    /// <summary>The prefix of every key of <paramref name="ns"/>, hash tag included.</summary>
    public string Prefix(string ns) => $"{keyPrefix}{{{ns}}}:";

    /// <summary>The namespace's meta hash; scripts take it as KEYS[1], which routes them to the slot.</summary>
    public RedisKey MetaKey(string ns) => Prefix(ns) + Meta;

    /// <summary>Every bucket key of one bucketed structure (<see cref="Entries"/>, <see cref="Lru"/>, <see cref="References"/>).</summary>
    public IEnumerable<RedisKey> Buckets(string ns, string kind)
    {
        var prefix = Prefix(ns) + kind;
        return Enumerable.Range(0, BucketCount).Select(b => (RedisKey)(prefix + b.ToString("x3", CultureInfo.InvariantCulture)));
    }
}
