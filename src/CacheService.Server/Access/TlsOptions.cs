namespace CacheService.Server.Access;

/// <summary>
/// TLS on both ports (configuration section <c>CacheService:Tls</c>), from PEM files that are read
/// again when they change, so a renewed certificate (cert-manager, a Secret) takes effect without a
/// restart. Unset: cleartext, as on loopback by default.
/// </summary>
public sealed class TlsOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Tls";

    /// <summary>The server's certificate chain, PEM. Setting it (with <see cref="KeyFile"/>) turns TLS on. Default unset.</summary>
    public string? CertificateFile { get; set; }

    /// <summary>The certificate's private key, PEM (PKCS#8 or PKCS#1). Default unset.</summary>
    public string? KeyFile { get; set; }

    /// <summary>
    /// CA certificates (PEM) that sign client certificates: mutual TLS. A client certificate that
    /// chains to one of them authenticates its holder as the token whose name is the certificate's
    /// common name, with that token's scopes. Default unset: no client certificates are asked for.
    /// </summary>
    public string? ClientCaFile { get; set; }

    /// <summary>With <see cref="ClientCaFile"/>: refuse connections that bring no valid client certificate. Default false (a token will do).</summary>
    public bool RequireClientCertificate { get; set; }

    /// <summary>How often the files are read again to see whether they changed. Default 1 minute.</summary>
    public TimeSpan ReloadInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>True when TLS is configured.</summary>
    public bool Enabled => !string.IsNullOrEmpty(CertificateFile);

    /// <summary>Problems with the values, empty when valid.</summary>
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrEmpty(CertificateFile) != string.IsNullOrEmpty(KeyFile))
        {
            yield return "CertificateFile and KeyFile go together";
        }

        if (!Enabled && !string.IsNullOrEmpty(ClientCaFile))
        {
            yield return "ClientCaFile needs TLS: set CertificateFile and KeyFile";
        }

        if (RequireClientCertificate && string.IsNullOrEmpty(ClientCaFile))
        {
            yield return "RequireClientCertificate needs ClientCaFile";
        }

        if (ReloadInterval < TimeSpan.Zero)
        {
            yield return "ReloadInterval must not be negative";
        }

        if (Enabled && !string.IsNullOrEmpty(KeyFile) && ServerCertificates.Problem(this) is { } problem)
        {
            yield return problem;
        }
    }
}
