namespace CacheService.Index.Redis;

/// <summary>The Redis key index (configuration section <c>CacheService:Redis</c>).</summary>
public sealed class RedisIndexOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Redis";

    /// <summary>
    /// StackExchange.Redis configuration string: endpoints and options, e.g.
    /// <c>redis-0:6379,redis-1:6379,password=...,ssl=true</c>. A cluster is found from any of its nodes.
    /// Required when the index engine is <c>redis</c>.
    /// </summary>
    public string Configuration { get; set; } = "";

    /// <summary>Prefix of every key this index writes. Default <c>cs:</c>.</summary>
    public string KeyPrefix { get; set; } = "cs:";

    /// <summary>How long a command may take before it counts as a Redis outage. Default 1 second.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long one connection attempt may take. Default 2 seconds.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Configuration)) yield return "Configuration is required (e.g. 127.0.0.1:6379)";
        if (string.IsNullOrEmpty(KeyPrefix) || KeyPrefix.Contains('{', StringComparison.Ordinal) || KeyPrefix.Contains('}', StringComparison.Ordinal))
        {
            yield return "KeyPrefix must be non-empty and contain no braces (they would change the hash slot)";
        }

        if (CommandTimeout <= TimeSpan.Zero) yield return "CommandTimeout must be positive";
        if (ConnectTimeout <= TimeSpan.Zero) yield return "ConnectTimeout must be positive";
    }
}
