using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Access;

/// <summary>
/// The server's certificate and the client CA, read from <see cref="TlsOptions"/>' PEM files and
/// read again when their content changes (checked at most once per
/// <see cref="TlsOptions.ReloadInterval"/>, as new connections arrive). Files that turn bad keep
/// the certificate read last.
/// </summary>
internal sealed class ServerCertificates
{
    private readonly TlsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<ServerCertificates> _logger;
    private readonly Lock _reload = new();
    private volatile Loaded _current;
    private long _checkedAtTicks; // UTC ticks of the last read; long, so it is read whole without the lock

    public ServerCertificates(IOptions<TlsOptions> options, TimeProvider time, ILogger<ServerCertificates> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _current = Load(_options);
        _checkedAtTicks = time.GetUtcNow().UtcTicks;
    }

    /// <summary>The certificate to present on a new connection.</summary>
    public X509Certificate2 Certificate => Current().Certificate;

    /// <summary>
    /// True when <paramref name="certificate"/> chains to the client CA (with the CA's own chain
    /// policy, not the machine's trust store; validity by the system clock, in which certificates live).
    /// </summary>
    public bool IsTrustedClient(X509Certificate2 certificate)
    {
        var authorities = Current().ClientAuthorities;
        if (authorities.Count == 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.2")); // client authentication
        return chain.Build(certificate);
    }

    /// <summary>What is wrong with the files, or null when they load.</summary>
    public static string? Problem(TlsOptions options)
    {
        try
        {
            Load(options).Certificate.Dispose();
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            return $"cannot load the TLS files ({options.CertificateFile}, {options.KeyFile}{(options.ClientCaFile is null ? "" : ", " + options.ClientCaFile)}): {e.Message}";
        }
    }

    private Loaded Current()
    {
        var now = _time.GetUtcNow().UtcTicks;
        if (now - Interlocked.Read(ref _checkedAtTicks) < _options.ReloadInterval.Ticks)
        {
            return _current;
        }

        lock (_reload)
        {
            if (now - Interlocked.Read(ref _checkedAtTicks) >= _options.ReloadInterval.Ticks)
            {
                Interlocked.Exchange(ref _checkedAtTicks, now);
                try
                {
                    var fresh = Load(_options);
                    if (fresh.Fingerprint != _current.Fingerprint)
                    {
                        _current = fresh;
                        Log.CertificateReloaded(_logger, fresh.Certificate.Subject, fresh.Certificate.NotAfter);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
                {
                    Log.CertificateUnreadable(_logger, e, _options.CertificateFile ?? "");
                }
            }

            return _current;
        }
    }

    private static Loaded Load(TlsOptions options)
    {
        var certificatePem = File.ReadAllText(options.CertificateFile!);
        var keyPem = File.ReadAllText(options.KeyFile!);
        var caPem = string.IsNullOrEmpty(options.ClientCaFile) ? "" : File.ReadAllText(options.ClientCaFile);
        using var pem = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        // Exported and imported again: on Linux a key from PEM is ephemeral, which SslStream accepts, but a PKCS#12 round trip is what Kestrel documents.
        var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        var authorities = new X509Certificate2Collection();
        if (caPem.Length > 0)
        {
            authorities.ImportFromPem(caPem);
            if (authorities.Count == 0)
            {
                throw new ArgumentException($"{options.ClientCaFile} holds no certificate");
            }
        }

        var fingerprint = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(certificatePem + keyPem + caPem)));
        return new Loaded(certificate, authorities, fingerprint);
    }

    private sealed record Loaded(X509Certificate2 Certificate, X509Certificate2Collection ClientAuthorities, string Fingerprint);
}
