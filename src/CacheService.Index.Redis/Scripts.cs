using C = CacheService.Index.Redis.EntryCodec;
using L = CacheService.Index.Redis.RedisKeyLayout;

namespace CacheService.Index.Redis;

/// <summary>
/// The Lua scripts that make every multi-key change of a namespace atomic. Key names
/// (<see cref="RedisKeyLayout"/>) and entry byte offsets (<see cref="EntryCodec"/>) are
/// interpolated from the C# constants, so neither is written twice.
/// </summary>
/// <remarks>
/// Every script gets the namespace's meta key as KEYS[1] (so clients route it to the right slot)
/// and the key prefix as ARGV[1]; the other keys are derived inside the script and share the
/// slot. Numbers passed back to Redis go through <c>int()</c> because Lua 5.1 would print large
/// doubles in exponent notation. Lua strings are 1-based, hence the <c>+ 1</c> on every offset.
/// </remarks>
internal static class Scripts
{
    // The last-access and hits doubles are rewritten together by a lookup.
    private const int TouchedFrom = C.LastAccessAt;
    private const int TouchedTo = C.HitsAt + 8;

    private static readonly string Prelude = $$"""
        local p = ARGV[1]
        local meta = KEYS[1]
        local function int(x) return string.format('%.0f', x) end
        local function bucket(raw)
          local a, b = string.byte(raw, 1, 2)
          return string.format('%03x', a * 16 + math.floor(b / 16))
        end
        local function layer_digest(v) return string.sub(v, {{C.DigestAt + 1}}, {{C.DigestAt + C.DigestLength}}) end
        local function blobs(v)
          local n = string.byte(v, {{C.CountAt + 1}}) * 256 + string.byte(v, {{C.CountAt + 2}})
          if n == 0 then
            return { { layer_digest(v), (struct.unpack('>d', v, {{C.SizeAt + 1}})) } }
          end
          local list = {}
          for i = 0, n - 1 do
            local at = {{C.FixedLength + 1}} + i * {{C.BlobStride}}
            list[#list + 1] = { string.sub(v, at, at + {{C.DigestLength - 1}}), (struct.unpack('>d', v, at + {{C.DigestLength}})) }
          end
          return list
        end
        local function add_ref(d, size)
          if redis.call('HINCRBY', p .. '{{L.References}}' .. bucket(d), d, 1) == 1 then
            redis.call('HINCRBY', meta, 'bytes', int(size))
            redis.call('ZREM', p .. '{{L.Collectable}}', d)
          end
        end
        local function drop_ref(d, size, now)
          local rb = p .. '{{L.References}}' .. bucket(d)
          if redis.call('HINCRBY', rb, d, -1) <= 0 then
            redis.call('HDEL', rb, d)
            redis.call('HINCRBY', meta, 'bytes', int(-size))
            redis.call('ZADD', p .. '{{L.Collectable}}', now, d)
          end
        end
        local function lru_rank(b)
          local lowest = redis.call('ZRANGE', p .. '{{L.Lru}}' .. b, 0, 0, 'WITHSCORES')
          if lowest[1] then
            redis.call('ZADD', p .. '{{L.LruMin}}', lowest[2], b)
          else
            redis.call('ZREM', p .. '{{L.LruMin}}', b)
          end
        end
        local function lru_touch(key)
          local b = bucket(key)
          redis.call('ZADD', p .. '{{L.Lru}}' .. b, redis.call('HINCRBY', meta, 'clock', 1), key)
          lru_rank(b)
        end
        local function lru_oldest(skip)
          local buckets = redis.call('ZRANGE', p .. '{{L.LruMin}}', 0, 1)
          for _, b in ipairs(buckets) do
            local keys = redis.call('ZRANGE', p .. '{{L.Lru}}' .. b, 0, 1)
            for _, k in ipairs(keys) do
              if k ~= skip then return k end
            end
          end
          return nil
        end
        local function untag(key)
          local t = redis.call('HGET', p .. '{{L.TagOf}}', key)
          if t then
            redis.call('HDEL', p .. '{{L.TagOf}}', key)
            redis.call('HDEL', p .. '{{L.TagKeys}}', t)
            redis.call('ZREM', p .. '{{L.Tags}}', t)
          end
        end
        local function remove_entry(key, now)
          local eb = p .. '{{L.Entries}}' .. bucket(key)
          local v = redis.call('HGET', eb, key)
          if not v then return false end
          redis.call('HDEL', eb, key)
          redis.call('ZREM', p .. '{{L.Lru}}' .. bucket(key), key)
          lru_rank(bucket(key))
          redis.call('HDEL', p .. '{{L.Preimages}}', key)
          untag(key)
          for _, b in ipairs(blobs(v)) do drop_ref(b[1], b[2], now) end
          redis.call('HINCRBY', meta, 'entries', -1)
          return true
        end
        local function own_bytes(v)
          local own = 0
          for _, b in ipairs(blobs(v)) do own = own + b[2] end
          return own
        end
        -- Stores an entry whose key is free, then evicts least recently used entries (never this
        -- one) down to the low watermark once the namespace is above the high one.
        local function insert(key, value, preimage, high, low, max_entries, now)
          redis.call('HSET', p .. '{{L.Entries}}' .. bucket(key), key, value)
          lru_touch(key)
          if preimage ~= '' then redis.call('HSET', p .. '{{L.Preimages}}', key, preimage) end
          for _, b in ipairs(blobs(value)) do add_ref(b[1], b[2]) end
          local entries = redis.call('HINCRBY', meta, 'entries', 1)
          local result = { 1, value, preimage }
          local over_bytes = tonumber(redis.call('HGET', meta, 'bytes')) > high
          if over_bytes or entries > max_entries then
            local evicted = 0
            while (over_bytes and tonumber(redis.call('HGET', meta, 'bytes')) > low)
                or tonumber(redis.call('HGET', meta, 'entries')) > max_entries do
              local victim = lru_oldest(key)
              if not victim then break end
              remove_entry(victim, now)
              result[#result + 1] = victim
              evicted = evicted + 1
            end
            redis.call('HINCRBY', meta, 'evictions', evicted)
          end
          return result
        end

        """;

    /// <summary>ARGV: prefix, key, now (ms), counted (1/0). Returns nil, or {value, preimage} after moving recency and counting the hit.</summary>
    public static readonly string Lookup = Prelude + $$"""
        local key = ARGV[2]
        local counted = ARGV[4] == '1'
        local eb = p .. '{{L.Entries}}' .. bucket(key)
        local v = redis.call('HGET', eb, key)
        if counted then redis.call('HINCRBY', meta, 'lookups', 1) end
        if not v then return false end
        if counted then redis.call('HINCRBY', meta, 'hits', 1) end
        lru_touch(key)
        local hits = struct.unpack('>d', v, {{C.HitsAt + 1}})
        v = string.sub(v, 1, {{TouchedFrom}}) .. struct.pack('>dd', tonumber(ARGV[3]), hits + 1) .. string.sub(v, {{TouchedTo + 1}})
        redis.call('HSET', eb, key, v)
        return { v, redis.call('HGET', p .. '{{L.Preimages}}', key) or '' }
        """;

    /// <summary>
    /// ARGV: prefix, key, value, high watermark, low watermark, now (ms), preimage, entry limit.
    /// Returns {-1} over budget; {0, value, preimage} when the key exists (first writer wins);
    /// {1, value, preimage, evicted keys...} when stored. Eviction runs in the same script, so the
    /// budget, the references and the entries never disagree.
    /// </summary>
    public static readonly string Commit = Prelude + $$"""
        local key, value = ARGV[2], ARGV[3]
        local existing = redis.call('HGET', p .. '{{L.Entries}}' .. bucket(key), key)
        if existing then return { 0, existing, redis.call('HGET', p .. '{{L.Preimages}}', key) or '' } end
        if own_bytes(value) > tonumber(ARGV[4]) then return { -1 } end
        return insert(key, value, ARGV[7], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[8]), ARGV[6])
        """;

    /// <summary>
    /// ARGV: prefix, key, value, high watermark, low watermark, now (ms), preimage, entry limit, tag. Points the
    /// tag at the entry, replacing whatever entry the key had, in this one script (a reader never
    /// sees the tag missing). Returns as <see cref="Commit"/>; {0, ...} when the tag already points
    /// at the same layer.
    /// </summary>
    public static readonly string PutTag = Prelude + $$"""
        local key, value, tag = ARGV[2], ARGV[3], ARGV[9]
        local existing = redis.call('HGET', p .. '{{L.Entries}}' .. bucket(key), key)
        local result
        if existing and layer_digest(existing) == layer_digest(value) then
          result = { 0, existing, redis.call('HGET', p .. '{{L.Preimages}}', key) or '' }
        else
          if own_bytes(value) > tonumber(ARGV[4]) then return { -1 } end
          if existing then remove_entry(key, ARGV[6]) end
          result = insert(key, value, ARGV[7], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[8]), ARGV[6])
        end
        redis.call('ZADD', p .. '{{L.Tags}}', 0, tag)
        redis.call('HSET', p .. '{{L.TagKeys}}', tag, key)
        redis.call('HSET', p .. '{{L.TagOf}}', key, tag)
        return result
        """;

    /// <summary>ARGV: prefix, after ('' from the first), limit. Returns tag, raw key, value triples in tag order.</summary>
    public static readonly string ListTags = Prelude + $$"""
        local from = ARGV[2] == '' and '-' or ('(' .. ARGV[2])
        local tags = redis.call('ZRANGEBYLEX', p .. '{{L.Tags}}', from, '+', 'LIMIT', 0, tonumber(ARGV[3]))
        local out = {}
        for _, t in ipairs(tags) do
          local k = redis.call('HGET', p .. '{{L.TagKeys}}', t)
          local v = k and redis.call('HGET', p .. '{{L.Entries}}' .. bucket(k), k)
          if v then
            out[#out + 1] = t
            out[#out + 1] = k
            out[#out + 1] = v
          end
        end
        return out
        """;

    /// <summary>ARGV: prefix, now (ms), keys... Returns how many were removed.</summary>
    public static readonly string Delete = Prelude + """
        local n = 0
        for i = 3, #ARGV do
          if remove_entry(ARGV[i], ARGV[2]) then n = n + 1 end
        end
        return n
        """;

    /// <summary>ARGV: prefix, now (ms), batch size. Removes up to a batch of entries; returns how many.</summary>
    public static readonly string DeleteBatch = Prelude + """
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
    public static readonly string DeleteReferencing = Prelude + $$"""
        local n = 0
        for i = 4, #ARGV do
          local v = redis.call('HGET', p .. '{{L.Entries}}' .. bucket(ARGV[i]), ARGV[i])
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
    public static readonly string TakeCollectable = Prelude + $$"""
        local due = redis.call('ZRANGEBYSCORE', p .. '{{L.Collectable}}', '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
        local out = {}
        for _, d in ipairs(due) do
          redis.call('ZREM', p .. '{{L.Collectable}}', d)
          if not redis.call('HGET', p .. '{{L.References}}' .. bucket(d), d) then out[#out + 1] = d end
        end
        return out
        """;

    /// <summary>ARGV: prefix, blob. Returns 1 when an entry references the blob or it waits in the collection queue.</summary>
    public static readonly string IsBlobInUse = Prelude + $$"""
        local d = ARGV[2]
        if redis.call('HGET', p .. '{{L.References}}' .. bucket(d), d) or redis.call('ZSCORE', p .. '{{L.Collectable}}', d) then return 1 end
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
