using System.Globalization;
using CacheService.Blobs.S3;

namespace CacheService.Testing;

/// <summary>
/// A real single-node Ceph cluster with an RGW (S3) frontend on free loopback ports, started by
/// scripts/rgw.sh in a directory of its own and stopped by PID on dispose. Starting one takes
/// about 15 seconds and half a gigabyte, so test classes share one through a collection.
/// </summary>
public sealed class RgwServer : IDisposable
{
    public const string AccessKey = "cacheservice";
    public const string SecretKey = "cacheservice-secret";

    /// <summary>
    /// Starts the cluster. A start that fails stops every daemon it had started (by PID), removes
    /// its directory and tries again on new ports.
    /// </summary>
    public RgwServer()
    {
        string? starting = null;
        (Directory, Port) = ServiceScripts.StartWithRetry(
            "Ceph RGW",
            () =>
            {
                var directory = starting = System.IO.Directory.CreateTempSubdirectory("cs-rgw-").FullName;
                var port = ServiceScripts.FreePort();
                var monPort = ServiceScripts.FreePort(alsoFreeOffset: 60);
                ServiceScripts.Run("rgw.sh", "start", directory, port.ToString(CultureInfo.InvariantCulture), monPort.ToString(CultureInfo.InvariantCulture));
                return (directory, port);
            },
            () => StopAndRemove(starting));
    }

    public string Directory { get; }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    /// <summary>Options for a store under a prefix of its own in the shared test bucket.</summary>
    public S3BlobOptions Options(string? prefix = null) => new()
    {
        Endpoint = Endpoint,
        Bucket = "cacheservice-tests",
        Prefix = prefix ?? "t" + Guid.NewGuid().ToString("N")[..12],
        AccessKey = AccessKey,
        SecretKey = SecretKey,
    };

    /// <summary>Stops only radosgw: the object store is down, the cluster behind it is not.</summary>
    public void StopGateway() => ServiceScripts.Run("rgw.sh", "stop-rgw", Directory);

    /// <summary>Starts radosgw again on the same port.</summary>
    public void StartGateway() => ServiceScripts.Run("rgw.sh", "start-rgw", Directory);

    /// <summary>Freezes radosgw (SIGSTOP): connections open and nothing answers, as a store that hangs.</summary>
    public void PauseGateway() => ServiceScripts.Run("rgw.sh", "pause-rgw", Directory);

    /// <summary>Lets a paused radosgw run again (SIGCONT).</summary>
    public void ResumeGateway() => ServiceScripts.Run("rgw.sh", "resume-rgw", Directory);

    public void Dispose() => StopAndRemove(Directory);

    private static void StopAndRemove(string? directory)
    {
        if (directory is null || !System.IO.Directory.Exists(directory))
        {
            return;
        }

        ServiceScripts.Run("rgw.sh", "stop", directory);
        System.IO.Directory.Delete(directory, recursive: true);
    }
}
