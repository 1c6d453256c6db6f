using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace CacheService.Testing;

/// <summary>
/// Runs the project's own scripts (scripts/*.sh) that start and stop real services on loopback,
/// and finds free ports for them. A script that fails throws with its output: a missing service
/// fails the test loudly, never skips it.
/// </summary>
public static class ServiceScripts
{
    private static readonly Random Ports = new();

    /// <summary>The repository root (the directory holding CacheService.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Runs <c>scripts/<paramref name="script"/></c> and returns its standard output.</summary>
    public static string Run(string script, params string[] args)
    {
        // From the repository root, as a person runs them: what they start must not depend on where that is.
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryRoot };
        start.ArgumentList.Add(Path.Combine(RepositoryRoot, "scripts", script));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"scripts/{script} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}{stdout.Result}");
        }

        return stdout.Result;
    }

    /// <summary>Lowest port drawn for a service.</summary>
    public const int FirstServicePort = 10000;

    /// <summary>
    /// Linux hands out 32768-60999 to outgoing connections (ip_local_port_range): a port drawn
    /// there can be taken by one in the seconds before the service binds it (seen: radosgw lost
    /// 35268 that way). Every port a service binds, siblings included, stays below this.
    /// </summary>
    public const int FirstEphemeralPort = 32768;

    /// <summary>
    /// A loopback port that is free now, and whose <paramref name="alsoFreeOffset"/> sibling is free
    /// too (Redis Cluster's bus listens on port + 10000; Ceph daemons bind up to 60 ports above the
    /// monitor's), all of them below <see cref="FirstEphemeralPort"/>.
    /// </summary>
    public static int FreePort(int alsoFreeOffset = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(alsoFreeOffset);
        for (var attempt = 0; attempt < 200; attempt++)
        {
            int port;
            lock (Ports)
            {
                port = Ports.Next(FirstServicePort, FirstEphemeralPort - alsoFreeOffset);
            }

            if (IsFree(port) && (alsoFreeOffset == 0 || IsFree(port + alsoFreeOffset)))
            {
                return port;
            }
        }

        throw new InvalidOperationException("no free loopback port found");
    }

    /// <summary>
    /// Runs <paramref name="start"/> up to <paramref name="attempts"/> times. A failed attempt
    /// runs <paramref name="cleanUp"/> first, so whatever it had started is stopped (a port taken
    /// between the draw and the bind is the usual cause; the next attempt draws new ports). The
    /// last failure is thrown with every earlier one in its message.
    /// </summary>
    public static T StartWithRetry<T>(string what, Func<T> start, Action cleanUp, int attempts = 3)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(cleanUp);
        var failures = new List<string>();
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return start();
            }
            catch (InvalidOperationException e)
            {
                cleanUp();
                failures.Add($"attempt {attempt}: {e.Message}");
                if (attempt >= attempts)
                {
                    throw new InvalidOperationException($"{what} did not start:\n{string.Join('\n', failures)}", e);
                }
            }
        }
    }

    private static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CacheService.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (CacheService.sln) above " + AppContext.BaseDirectory);
    }
}
