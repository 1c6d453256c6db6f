namespace CacheService.Client;

/// <summary>How a <see cref="CacheServiceClient"/> reaches the server and how patient it is.</summary>
public sealed class CacheServiceClientOptions
{
    /// <summary>The server's gRPC address. Default <c>http://127.0.0.1:50051</c>, where <c>make run</c> listens.</summary>
    public Uri Address { get; set; } = new("http://127.0.0.1:50051");

    /// <summary>
    /// A token's secret, sent as <c>authorization: Bearer</c> on every call, for a server that
    /// checks tokens. Default the environment variable <c>CACHESERVICE_TOKEN</c>, else none.
    /// </summary>
    public string? Token { get; set; } = Environment.GetEnvironmentVariable("CACHESERVICE_TOKEN") is { Length: > 0 } token ? token : null;

    /// <summary>
    /// For an <c>https://</c> <see cref="Address"/>: a PEM file of the CA certificates that sign the
    /// server's certificate, trusted instead of the machine's store. Default none: the machine's store.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>For mutual TLS: the client certificate (PEM) to present. Default none.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The private key (PEM) of <see cref="ClientCertificateFile"/>. Default none.</summary>
    public string? ClientKeyFile { get; set; }

    /// <summary>Deadline of each attempt of a unary call. Default 30 seconds.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Deadline of each attempt of an upload or download. Default 1 hour.</summary>
    public TimeSpan TransferTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Retries after the first attempt of an idempotent call. Default 3; 0 turns retries off.</summary>
    public int MaxRetries { get; set; } = 3;

    /// <summary>Delay before the first retry; it doubles (with jitter) on each further one. Default 200 ms.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Bytes per upload message. Default 1 MiB (the server accepts up to 4 MiB).</summary>
    public int ChunkSize { get; set; } = 1024 * 1024;

    /// <summary>The clock for deadlines and retry delays. Default the system clock.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
