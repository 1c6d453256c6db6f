using CacheService.Core;
using StackExchange.Redis;

namespace CacheService.Index.Redis;

/// <summary>
/// Runs a namespace's scripts and reads, and is the one place where Redis failures are sorted
/// into outages (<see cref="BackendUnavailableException"/>) and everything else.
/// </summary>
internal sealed class RedisScriptRunner(IConnectionMultiplexer redis, RedisKeyLayout layout)
{
    public IDatabase Db => redis.GetDatabase();

    // EVALSHA first: the scripts are a few KB each, and sending their text with every lookup
    // costs more than running them. A node that does not know a script yet (new, restarted,
    // another cluster master) answers NOSCRIPT, and EVAL teaches it. Every script gets the
    // namespace's meta key as KEYS[1] and the key prefix as ARGV[1].
    public async Task<RedisResult> RunAsync(string ns, string script, RedisValue[] args, CancellationToken cancellationToken)
    {
        RedisKey[] keys = [layout.MetaKey(ns)];
        RedisValue[] values = [layout.Prefix(ns), .. args];
        try
        {
            return await GuardAsync(Db.ScriptEvaluateAsync(Scripts.Sha1(script), keys, values), cancellationToken);
        }
        catch (RedisServerException e) when (e.Message.StartsWith("NOSCRIPT", StringComparison.Ordinal))
        {
            return await GuardAsync(Db.ScriptEvaluateAsync(script, keys, values), cancellationToken);
        }
    }

    // Maps Redis outages to BackendUnavailableException and honours the caller's cancellation
    // (StackExchange.Redis commands take no token; their own timeout bounds them anyway).
    public static async Task<T> GuardAsync<T>(Task<T> command, CancellationToken cancellationToken)
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

    // Outages and overloads: a Redis that is unreachable, slow, loading, without quorum, read-only
    // after a failover, busy with a long script (BUSY), out of memory (OOM), refusing writes after
    // a failed save (MISCONF) or missing replicas (NOREPLICAS). Builds treat them as a miss or
    // UNAVAILABLE; anything else is a bug and surfaces as one.
    private static readonly string[] OutageReplies = ["LOADING", "CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "READONLY", "BUSY", "OOM", "MISCONF", "NOREPLICAS"];

    private static bool IsOutage(Exception e) => e switch
    {
        RedisConnectionException or RedisTimeoutException => true,
        RedisServerException server => OutageReplies.Any(reply => server.Message.StartsWith(reply, StringComparison.Ordinal)),
        _ => false,
    };
}
