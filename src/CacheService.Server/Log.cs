namespace CacheService.Server;

/// <summary>
/// Every event the server logs, in one table with fixed ids, so operators can alert on an id and
/// a reader sees at once what the server can say. Every warning and error carries its exception.
/// </summary>
/// <remarks>
/// Ids: 1-99 lifecycle; 100-199 requests and backends (110-119 authentication); 200-299 background work;
/// 300-399 the audit log (category <c>CacheService.Audit</c>).
/// Nothing is logged per request at Information: the hot path stays quiet.
/// </remarks>
internal static partial class Log
{
    // Scripts read this line to learn the ports when the server was asked for port 0.
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "CacheService listening: grpc={GrpcPort} http={HttpPort} data={DataDirectory}")]
    public static partial void Listening(ILogger logger, int grpcPort, int httpPort, string dataDirectory);

    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "Unexpected failure in {Method}")]
    public static partial void UnexpectedFailure(ILogger logger, Exception exception, string method);

    [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "The {Backend} is unavailable")]
    public static partial void BackendUnavailable(ILogger logger, Exception? exception, string backend);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Tokens file {Path} changed: {Count} tokens now")]
    public static partial void TokensReloaded(ILogger logger, string path, int count);

    [LoggerMessage(EventId = 111, Level = LogLevel.Error, Message = "Tokens file {Path} cannot be read; the {Count} tokens read before stay in force")]
    public static partial void TokensFileUnreadable(ILogger logger, Exception exception, string path, int count);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Client {Address} failed to authenticate {Count} times within a minute; its requests with credentials are refused for now")]
    public static partial void AuthenticationThrottled(ILogger logger, string address, int count);

    [LoggerMessage(EventId = 113, Level = LogLevel.Warning, Message = "An index entry of namespace {Namespace} failed its MAC check: it was not written with this server's keys. It was removed and served as a miss")]
    public static partial void ForgedEntry(ILogger logger, string @namespace);

    [LoggerMessage(EventId = 116, Level = LogLevel.Warning, Message = "Blob {Digest} of namespace {Namespace} no longer matches its digest ({Check} found it): it was removed with the entries that named it, and the next build rebuilds it")]
    public static partial void CorruptBlob(ILogger logger, string digest, string @namespace, string check);

    [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "TLS certificate files changed: now {Subject}, valid until {NotAfter}")]
    public static partial void CertificateReloaded(ILogger logger, string subject, DateTime notAfter);

    [LoggerMessage(EventId = 115, Level = LogLevel.Error, Message = "TLS certificate files ({Path}) cannot be read; the certificate read before stays in use")]
    public static partial void CertificateUnreadable(ILogger logger, Exception exception, string path);

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "{Work}: deleted {Count} blobs")]
    public static partial void BlobsDeleted(ILogger logger, string work, int count);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "{Work} failed; it runs again at the next interval")]
    public static partial void BackgroundWorkFailed(ILogger logger, Exception exception, string work);

    [LoggerMessage(EventId = 220, Level = LogLevel.Warning, Message = "Could not check or create the bucket at start")]
    public static partial void BucketSetupFailed(ILogger logger, Exception exception);
}
