namespace CacheService.Testing;

/// <summary>
/// A CA and certificates it signs, made with the openssl command line in a directory of their own:
/// a server certificate for 127.0.0.1 and client certificates whose common names name tokens.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private TestCertificates(string directory) => Directory = directory;

    /// <summary>Where the PEM files are.</summary>
    public string Directory { get; }

    /// <summary>The CA certificate.</summary>
    public string CaFile => Path.Combine(Directory, "ca.pem");

    /// <summary>The server's certificate and key.</summary>
    public (string Certificate, string Key) Server => (Path.Combine(Directory, "server.pem"), Path.Combine(Directory, "server.key"));

    /// <summary>Makes a CA (named <paramref name="caName"/>) and a server certificate for 127.0.0.1 signed by it.</summary>
    public static async Task<TestCertificates> CreateAsync(string caName = "test-ca")
    {
        var made = new TestCertificates(System.IO.Directory.CreateTempSubdirectory("cs-certs-").FullName);
        await OpensslAsync(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", $"/CN={caName}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout", Path.Combine(made.Directory, "ca.key"), "-out", made.CaFile);
        await made.SignAsync("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
        return made;
    }

    /// <summary>A client certificate with common name <paramref name="commonName"/>; returns its certificate and key files.</summary>
    public async Task<(string Certificate, string Key)> ClientAsync(string commonName) =>
        await SignAsync("client-" + commonName, commonName, "extendedKeyUsage=clientAuth\n");

    /// <summary>Replaces the server's certificate with a new one (a new key and serial), as a renewal does.</summary>
    public Task RenewServerAsync() => SignAsync("server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);

    private async Task<(string Certificate, string Key)> SignAsync(string name, string commonName, string extensions)
    {
        var key = Path.Combine(Directory, name + ".key");
        var request = Path.Combine(Directory, name + ".csr");
        var certificate = Path.Combine(Directory, name + ".pem");
        var extensionFile = Path.Combine(Directory, name + ".ext");
        await File.WriteAllTextAsync(extensionFile, extensions);
        await OpensslAsync("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", $"/CN={commonName}", "-keyout", key + ".new", "-out", request);
        await OpensslAsync("x509", "-req", "-in", request, "-CA", CaFile, "-CAkey", Path.Combine(Directory, "ca.key"), "-CAcreateserial",
            "-days", "2", "-extfile", extensionFile, "-out", certificate + ".new");
        File.Move(key + ".new", key, overwrite: true);
        File.Move(certificate + ".new", certificate, overwrite: true);
        return (certificate, key);
    }

    private static async Task OpensslAsync(params string[] args)
    {
        var (exit, output, error) = await Tools.RunAsync("openssl", "openssl", null, args);
        if (exit != 0)
        {
            throw new InvalidOperationException($"openssl {string.Join(' ', args)} failed: {output}{error}");
        }
    }
}
