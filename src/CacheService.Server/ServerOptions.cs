namespace CacheService.Server;

/// <summary>Where the server listens and keeps its data (configuration section <c>CacheService:Server</c>).</summary>
public sealed class ServerOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Server";

    /// <summary>IP address both endpoints bind to. Default 127.0.0.1.</summary>
    public string ListenAddress { get; set; } = "127.0.0.1";

    /// <summary>gRPC port (HTTP/2 only; cleartext unless <c>CacheService:Tls</c> is set). 0 picks a free port. Default 50051.</summary>
    public int GrpcPort { get; set; } = 50051;

    /// <summary>HTTP/1.1 port for metrics, the status page and health. 0 picks a free port. Default 8080.</summary>
    public int HttpPort { get; set; } = 8080;

    /// <summary>Largest gRPC message accepted, in bytes (upload chunks must fit). Default 4 MiB.</summary>
    public int MaxMessageBytes { get; set; } = 4 << 20;

    /// <summary>
    /// HTTP/2 receive window of one gRPC stream, in bytes: how much of an upload may be in flight
    /// before the client waits for the server. Memory per upload is bounded by it. Default 4 MiB.
    /// </summary>
    public int Http2StreamWindowBytes { get; set; } = 4 << 20;

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (Http2StreamWindowBytes is < 65535 or > (1 << 30)) yield return "Http2StreamWindowBytes must be between 65535 and 1 GiB";
        if (!System.Net.IPAddress.TryParse(ListenAddress, out _)) yield return "ListenAddress must be an IP address";
        if (GrpcPort is < 0 or > 65535) yield return "GrpcPort must be 0-65535";
        if (HttpPort is < 0 or > 65535) yield return "HttpPort must be 0-65535";
        if (GrpcPort != 0 && GrpcPort == HttpPort) yield return "GrpcPort and HttpPort must differ";
        if (MaxMessageBytes < 64 * 1024) yield return "MaxMessageBytes must be at least 65536";
    }
}

/// <summary>Which engines hold the index and the blobs (configuration section <c>CacheService:Storage</c>).</summary>
public sealed class StorageOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Storage";

    /// <summary>Directory of the embedded engines: <c>index.db</c> and <c>blobs/</c>. Default <c>./.cacheservice</c>.</summary>
    public string DataDirectory { get; set; } = ".cacheservice";

    /// <summary>Index engine: <c>sqlite</c> (embedded, in <see cref="DataDirectory"/>) or <c>redis</c> (see <c>CacheService:Redis</c>). Default <c>sqlite</c>.</summary>
    public IndexEngine IndexEngine { get; set; } = IndexEngine.Sqlite;

    /// <summary>Blob engine: <c>filesystem</c> (embedded, in <see cref="DataDirectory"/>) or <c>s3</c> (see <c>CacheService:S3</c>). Default <c>filesystem</c>.</summary>
    public BlobEngine BlobEngine { get; set; } = BlobEngine.FileSystem;

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory)) yield return "DataDirectory is required";
        if (!Enum.IsDefined(IndexEngine)) yield return "IndexEngine must be 'sqlite' or 'redis'";
        if (!Enum.IsDefined(BlobEngine)) yield return "BlobEngine must be 'filesystem' or 's3'";
    }
}

/// <summary>Where the key index lives. Configuration names them case-insensitively (<c>sqlite</c>, <c>redis</c>).</summary>
public enum IndexEngine
{
    /// <summary>Embedded: one SQLite file in the data directory.</summary>
    Sqlite,

    /// <summary>Redis or Redis Cluster, shared by any number of replicas.</summary>
    Redis,
}

/// <summary>Where blobs live. Configuration names them case-insensitively (<c>filesystem</c>, <c>s3</c>).</summary>
public enum BlobEngine
{
    /// <summary>Embedded: files in the data directory.</summary>
    FileSystem,

    /// <summary>An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, R2).</summary>
    S3,
}
