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
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
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

    /// <summary>
    /// A loopback port that is free now, and whose <paramref name="alsoFreeOffset"/> sibling is free
    /// too (Redis Cluster's bus listens on port + 10000, so cluster ports stay at or below 55535).
    /// </summary>
    public static int FreePort(int alsoFreeOffset = 0)
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            int port;
            lock (Ports)
            {
                port = Ports.Next(20000, 55535);
            }

            if (IsFree(port) && (alsoFreeOffset == 0 || IsFree(port + alsoFreeOffset)))
            {
                return port;
            }
        }

        throw new InvalidOperationException("no free loopback port found");
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
