namespace CacheService.Index.Redis;

/// <summary>
/// The Lua scripts that make every multi-key change of a namespace atomic.
/// </summary>
/// <remarks>
/// <para>Key layout per namespace <c>ns</c>, all under one hash tag so a namespace lives in one
/// Redis Cluster slot and a script may touch any of its keys:</para>
/// <code>
/// {p}m            hash    clock, entries, bytes, evictions, lookups, hits, up, down
/// {p}e:&lt;bbb&gt;      hash    entry buckets: raw 32-byte key -> EntryCodec value
/// {p}l:&lt;bbb&gt;      zset    LRU buckets: raw key, scored by the logical clock of its last use
/// {p}lrumin       zset    bucket id (bbb), scored by the lowest score in that LRU bucket
/// {p}r:&lt;bbb&gt;      hash    reference buckets: raw 32-byte blob digest -> reference count
/// {p}gc           zset    unreferenced blobs, scored by when (ms) their last reference went
/// {p}pre          hash    raw key -> preimage JSON, only for keys committed with their inputs
/// </code>
/// <para>where <c>{p}</c> is <c>&lt;prefix&gt;{ns}:</c> and <c>bbb</c> is the first 12 bits of the raw
/// key or digest in hex. Bucketing keeps each hash and sorted set small enough for Redis's
/// compact listpack encoding (with <c>hash-max-listpack-value</c> &gt;= 128), which is what keeps an
/// entry under 300 bytes; one big sorted set for the LRU alone would cost ~136 bytes an entry.
/// The LRU stays exact: the oldest entry is the lowest member of the bucket that
/// <c>lrumin</c> ranks first, and every change to a bucket refreshes its rank there.</para>
/// <para>Every script gets the namespace's meta key as KEYS[1] (so clients route it to the right
/// slot) and the key prefix as ARGV[1]; the other keys are derived inside the script and share
/// the slot. Numbers passed back to Redis go through <c>int()</c> because Lua 5.1 would print
/// large doubles in exponent notation.</para>
/// </remarks>
internal static class Scripts
{
    private const string Prelude = """
        local p = ARGV[1]
        local meta = KEYS[1]
        local function int(x) return string.format('%.0f', x) end
        local function bucket(raw)
          local a, b = string.byte(raw, 1, 2)
          return string.format('%03x', a * 16 + math.floor(b / 16))
        end
        local function blobs(v)
          local n = string.byte(v, 98) * 256 + string.byte(v, 99)
          if n == 0 then
            return { { string.sub(v, 34, 65), (struct.unpack('>d', v, 26)) } }
          end
          local list = {}
          for i = 0, n - 1 do
            local at = 100 + i * 40
            list[#list + 1] = { string.sub(v, at, at + 31), (struct.unpack('>d', v, at + 32)) }
          end
          return list
        end
        local function add_ref(d, size)
          if redis.call('HINCRBY', p .. 'r:' .. bucket(d), d, 1) == 1 then
            redis.call('HINCRBY', meta, 'bytes', int(size))
            redis.call('ZREM', p .. 'gc', d)
          end
        end
        local function drop_ref(d, size, now)
          local rb = p .. 'r:' .. bucket(d)
          if redis.call('HINCRBY', rb, d, -1) <= 0 then
            redis.call('HDEL', rb, d)
            redis.call('HINCRBY', meta, 'bytes', int(-size))
            redis.call('ZADD', p .. 'gc', now, d)
          end
        end
        local function lru_rank(b)
          local lowest = redis.call('ZRANGE', p .. 'l:' .. b, 0, 0, 'WITHSCORES')
          if lowest[1] then
            redis.call('ZADD', p .. 'lrumin', lowest[2], b)
          else
            redis.call('ZREM', p .. 'lrumin', b)
          end
        end
        local function lru_touch(key)
          local b = bucket(key)
          redis.call('ZADD', p .. 'l:' .. b, redis.call('HINCRBY', meta, 'clock', 1), key)
          lru_rank(b)
        end
        local function lru_oldest(skip)
          local buckets = redis.call('ZRANGE', p .. 'lrumin', 0, 1)
          for _, b in ipairs(buckets) do
            local keys = redis.call('ZRANGE', p .. 'l:' .. b, 0, 1)
            for _, k in ipairs(keys) do
              if k ~= skip then return k end
            end
          end
          return nil
        end
        local function remove_entry(key, now)
          local eb = p .. 'e:' .. bucket(key)
          local v = redis.call('HGET', eb, key)
          if not v then return false end
          redis.call('HDEL', eb, key)
          redis.call('ZREM', p .. 'l:' .. bucket(key), key)
          lru_rank(bucket(key))
          redis.call('HDEL', p .. 'pre', key)
          for _, b in ipairs(blobs(v)) do drop_ref(b[1], b[2], now) end
          redis.call('HINCRBY', meta, 'entries', -1)
          return true
        end

        """;

    /// <summary>ARGV: prefix, key, now (ms). Returns nil, or {value, preimage} after moving recency and counting the hit.</summary>
    public const string Lookup = Prelude + """
        local key = ARGV[2]
        local counted = ARGV[4] == '1'
        local eb = p .. 'e:' .. bucket(key)
        local v = redis.call('HGET', eb, key)
        if counted then redis.call('HINCRBY', meta, 'lookups', 1) end
        if not v then return false end
        if counted then redis.call('HINCRBY', meta, 'hits', 1) end
        lru_touch(key)
        local hits = struct.unpack('>d', v, 18)
        v = string.sub(v, 1, 9) .. struct.pack('>dd', tonumber(ARGV[3]), hits + 1) .. string.sub(v, 26)
        redis.call('HSET', eb, key, v)
        return { v, redis.call('HGET', p .. 'pre', key) or '' }
        """;

    /// <summary>
    /// ARGV: prefix, key, value, high watermark, low watermark, now (ms), preimage.
    /// Returns {-1} over budget; {0, value, preimage} when the key exists (first writer wins);
    /// {1, value, preimage, evicted keys...} when stored. Eviction runs in the same script, so the
    /// budget, the references and the entries never disagree.
    /// </summary>
    public const string Commit = Prelude + """
        local key, value, now = ARGV[2], ARGV[3], ARGV[6]
        local high, low = tonumber(ARGV[4]), tonumber(ARGV[5])
        local eb = p .. 'e:' .. bucket(key)
        local existing = redis.call('HGET', eb, key)
        if existing then return { 0, existing, redis.call('HGET', p .. 'pre', key) or '' } end
        local list = blobs(value)
        local own = 0
        for _, b in ipairs(list) do own = own + b[2] end
        if own > high then return { -1 } end
        redis.call('HSET', eb, key, value)
        lru_touch(key)
        if ARGV[7] ~= '' then redis.call('HSET', p .. 'pre', key, ARGV[7]) end
        for _, b in ipairs(list) do add_ref(b[1], b[2]) end
        redis.call('HINCRBY', meta, 'entries', 1)
        local result = { 1, value, ARGV[7] }
        if tonumber(redis.call('HGET', meta, 'bytes')) > high then
          local evicted = 0
          while tonumber(redis.call('HGET', meta, 'bytes')) > low do
            local victim = lru_oldest(key)
            if not victim then break end
            remove_entry(victim, now)
            result[#result + 1] = victim
            evicted = evicted + 1
          end
          redis.call('HINCRBY', meta, 'evictions', evicted)
        end
        return result
        """;

    /// <summary>ARGV: prefix, now (ms), keys... Returns how many were removed.</summary>
    public const string Delete = Prelude + """
        local n = 0
        for i = 3, #ARGV do
          if remove_entry(ARGV[i], ARGV[2]) then n = n + 1 end
        end
        return n
        """;

    /// <summary>ARGV: prefix, now (ms), batch size. Removes up to a batch of entries; returns how many.</summary>
    public const string DeleteBatch = Prelude + """
        local n = 0
        while n < tonumber(ARGV[3]) do
          local victim = lru_oldest(nil)
          if not victim then break end
          remove_entry(victim, ARGV[2])
          n = n + 1
        end
        return n
        """;

    /// <summary>ARGV: prefix, now (ms), blob, keys... Removes those keys that still reference the blob.</summary>
    public const string DeleteReferencing = Prelude + """
        local n = 0
        for i = 4, #ARGV do
          local v = redis.call('HGET', p .. 'e:' .. bucket(ARGV[i]), ARGV[i])
          if v then
            for _, b in ipairs(blobs(v)) do
              if b[1] == ARGV[3] then
                remove_entry(ARGV[i], ARGV[2])
                n = n + 1
                break
              end
            end
          end
        end
        return n
        """;

    /// <summary>ARGV: prefix, cutoff (ms), max. Pops due blobs off the queue; returns those still unreferenced.</summary>
    public const string TakeCollectable = Prelude + """
        local due = redis.call('ZRANGEBYSCORE', p .. 'gc', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
        local out = {}
        for _, d in ipairs(due) do
          redis.call('ZREM', p .. 'gc', d)
          if not redis.call('HGET', p .. 'r:' .. bucket(d), d) then out[#out + 1] = d end
        end
        return out
        """;

    /// <summary>ARGV: prefix, blob. Returns 1 when an entry references the blob or it waits in the collection queue.</summary>
    public const string IsBlobInUse = Prelude + """
        local d = ARGV[2]
        if redis.call('HGET', p .. 'r:' .. bucket(d), d) or redis.call('ZSCORE', p .. 'gc', d) then return 1 end
        return 0
        """;

    /// <summary>ARGV: prefix, lookups, hits, bytes uploaded, bytes downloaded.</summary>
    public const string RecordUsage = """
        local fields = { 'lookups', 'hits', 'up', 'down' }
        for i = 1, 4 do
          if ARGV[i + 1] ~= '0' then redis.call('HINCRBY', KEYS[1], fields[i], ARGV[i + 1]) end
        end
        return 0
        """;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte[]> Hashes = new();

    /// <summary>The SHA-1 that EVALSHA names a script by (Redis's choice of name, not a security use).</summary>
#pragma warning disable CA5350
    public static byte[] Sha1(string script) =>
        Hashes.GetOrAdd(script, s => System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes(s)));
#pragma warning restore CA5350
}
