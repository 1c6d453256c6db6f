namespace CacheService.Testing;

/// <summary>
/// A real <c>redis-server</c> (or a 3-master Redis Cluster) on free loopback ports, started by
/// scripts/redis.sh in a directory of its own and stopped by PID on dispose.
/// </summary>
public sealed class RedisServers : IDisposable
{
    private RedisServers(string directory, int[] ports)
    {
        Directory = directory;
        Ports = ports;
    }

    /// <summary>Where the servers keep their data (AOF) and logs.</summary>
    public string Directory { get; }

    /// <summary>The ports, one per server.</summary>
    public IReadOnlyList<int> Ports { get; }

    /// <summary>A StackExchange.Redis configuration string naming every server.</summary>
    public string Configuration => string.Join(',', Ports.Select(p => $"127.0.0.1:{p}"));

    /// <summary>Starts one redis-server with AOF persistence.</summary>
    /// <summary>
    /// The entry key every server on a shared Redis index must be given (replicas share it). A
    /// fixed one: the servers of one test must agree, and nothing here is secret.
    /// </summary>
    public const string EntryKeyArg = "--CacheService:Integrity:EntryKey=dGVzdCBlbnRyeSBrZXkgZm9yIGNhY2hlc2VydmljZSB0ZXN0cw==";

    public static RedisServers StartSingle() => Start("redis-server", "cs-redis-", "start", () => [ServiceScripts.FreePort()]);

    /// <summary>Starts three masters and joins them into a cluster.</summary>
    public static RedisServers StartCluster() => Start("Redis Cluster", "cs-redis-cluster-", "cluster",
        () => [.. Enumerable.Range(0, 3).Select(_ => ServiceScripts.FreePort(alsoFreeOffset: 10000)).Distinct()]);

    // A start that fails stops what it had started (by PID) and tries again on new ports.
    private static RedisServers Start(string what, string prefix, string command, Func<int[]> ports)
    {
        string? directory = null;
        return ServiceScripts.StartWithRetry(
            what,
            () =>
            {
                directory = System.IO.Directory.CreateTempSubdirectory(prefix).FullName;
                var chosen = ports();
                ServiceScripts.Run("redis.sh", [command, directory, .. chosen.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
                return new RedisServers(directory, chosen);
            },
            () =>
            {
                if (directory is not null && System.IO.Directory.Exists(directory))
                {
                    ServiceScripts.Run("redis.sh", "stop", directory);
                    System.IO.Directory.Delete(directory, recursive: true);
                }
            });
    }

    private void Signal(string signal)
    {
        var pid = File.ReadAllText(Path.Combine(Directory, Ports[0].ToString(System.Globalization.CultureInfo.InvariantCulture), "redis.pid")).Trim();
        using var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, pid]);
        kill.WaitForExit();
    }

    /// <summary>Stops every server (by PID); the data stays for <see cref="Restart"/>.</summary>
    public void Stop() => ServiceScripts.Run("redis.sh", "stop", Directory);

    /// <summary>Starts a stopped single server again on the same port and data (AOF is replayed).</summary>
    public void Restart() => ServiceScripts.Run("redis.sh", "start", Directory, Ports[0].ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Freezes the first server (SIGSTOP): it keeps its connections but answers nothing, like a hung host.</summary>
    public void Freeze() => Signal("STOP");

    /// <summary>Lets a frozen server run again (SIGCONT).</summary>
    public void Thaw() => Signal("CONT");

    /// <summary>Kills the first server outright (SIGKILL), as a crash would; <see cref="Restart"/> brings it back.</summary>
    public void Kill() => Signal("KILL");

    public void Dispose()
    {
        Stop();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
