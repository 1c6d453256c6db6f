namespace CacheService.Blobs.S3;

/// <summary>The S3-compatible blob store (configuration section <c>CacheService:S3</c>).</summary>
public sealed class S3BlobOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:S3";

    /// <summary>Endpoint URL, e.g. <c>https://s3.eu-west-1.amazonaws.com</c> or <c>http://127.0.0.1:7480</c>; <c>https</c> turns TLS on. Required with the S3 engine.</summary>
    public string Endpoint { get; set; } = "";

    /// <summary>Bucket; created at start when missing. Default <c>cacheservice</c>.</summary>
    public string Bucket { get; set; } = "cacheservice";

    /// <summary>Prefix of every object: <c>&lt;prefix&gt;/&lt;namespace&gt;/blobs/sha256/&lt;hex&gt;</c>. Default <c>cacheservice</c>.</summary>
    public string Prefix { get; set; } = "cacheservice";

    /// <summary>Access key. Required with the S3 engine.</summary>
    public string AccessKey { get; set; } = "";

    /// <summary>Secret key. Required with the S3 engine.</summary>
    public string SecretKey { get; set; } = "";

    /// <summary>Region used for signing. Default <c>us-east-1</c>.</summary>
    public string Region { get; set; } = "us-east-1";

    /// <summary>How long presigned URLs stay valid. Default 15 minutes.</summary>
    public TimeSpan PresignExpiry { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Hand out presigned URLs so clients move layers straight to and from the object store. Default false.</summary>
    public bool DirectTransfer { get; set; }

    /// <summary>
    /// How long a call may wait on the object store without progress: an answer to a request, or
    /// the next bytes of an upload or a download in flight. Past it the call is an outage (a miss
    /// or UNAVAILABLE, and counted by the circuit breaker), never a hang. Default 30 seconds.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Bytes of local copies a replica keeps, in its data directory, of the blobs it pushes and
    /// pulls, so a repeated pull moves its bytes from local disk (the object store is still asked
    /// whether the blob exists). 0 turns copies off. Default 0.
    /// </summary>
    public long LocalCopyBytes { get; set; }

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (!Uri.TryCreate(Endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            yield return "Endpoint must be an http:// or https:// URL";
        }

        if (Bucket.Length is < 3 or > 63) yield return "Bucket must be 3 to 63 characters";
        if (string.IsNullOrEmpty(Prefix) || Prefix.StartsWith('/') || Prefix.EndsWith('/')) yield return "Prefix must be non-empty without leading or trailing '/'";
        if (string.IsNullOrEmpty(AccessKey)) yield return "AccessKey is required";
        if (string.IsNullOrEmpty(SecretKey)) yield return "SecretKey is required";
        if (IdleTimeout < TimeSpan.FromMilliseconds(100) || IdleTimeout > TimeSpan.FromHours(1)) yield return "IdleTimeout must be between 100 ms and 1 hour";
        if (PresignExpiry < TimeSpan.FromSeconds(1) || PresignExpiry > TimeSpan.FromDays(7)) yield return "PresignExpiry must be between 1 second and 7 days";
        if (LocalCopyBytes < 0) yield return "LocalCopyBytes must not be negative (0 keeps no local copies)";
    }
}
