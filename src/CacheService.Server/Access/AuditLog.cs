namespace CacheService.Server.Access;

/// <summary>
/// One line for every write and delete, on either port: who (the token's name), from where, what,
/// in which namespace, and the layer it concerns. Its own log category,
/// <c>CacheService.Audit</c>, so operators can route it apart from the server's log.
/// </summary>
internal sealed partial class AuditLog(ILoggerFactory loggers)
{
    /// <summary>The log category of audit lines.</summary>
    public const string Category = "CacheService.Audit";

    private readonly ILogger _logger = loggers.CreateLogger(Category);

    /// <summary>Records a write or delete by the caller of <paramref name="http"/>; <paramref name="target"/> is a key, tag or blob.</summary>
    public void Written(HttpContext http, string action, string ns, string target, string? layer)
    {
        var token = http.Caller().DisplayName;
        var client = http.ClientAddress();
        Entry(_logger, action, token, client, ns, target, layer ?? "-");
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "audit: {Action} by {Token} from {Client} namespace={Namespace} target={Target} layer={Layer}")]
    private static partial void Entry(ILogger logger, string action, string token, string client, string @namespace, string target, string layer);
}
