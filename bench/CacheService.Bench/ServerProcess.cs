using System.Globalization;
using CacheService.Testing;

namespace CacheService.Bench;

/// <summary>
/// The built server in a process of its own (scripts/server.sh), so that its CPU time and peak
/// memory can be read from /proc while the load generator runs in this one.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("cs-bench-server-").FullName;

    public ServerProcess(params string[] args)
    {
        var ports = ServiceScripts.Run("server.sh", ["start", _state, .. args]).Trim().Split(' ');
        GrpcAddress = $"http://127.0.0.1:{ports[0]}";
        HttpPort = int.Parse(ports[1], CultureInfo.InvariantCulture);
        Pid = int.Parse(File.ReadAllText(Path.Combine(_state, "server.pid")).Trim(), CultureInfo.InvariantCulture);
    }

    public string GrpcAddress { get; }

    public int Pid { get; }

    public int HttpPort { get; }

    /// <summary>User plus system CPU time so far, in seconds.</summary>
    public double CpuSeconds()
    {
        var fields = File.ReadAllText($"/proc/{Pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    /// <summary>Peak resident memory so far (VmHWM), in bytes.</summary>
    public long PeakResidentBytes()
    {
        var line = File.ReadLines($"/proc/{Pid}/status").First(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    public void Dispose()
    {
        ServiceScripts.Run("server.sh", "stop", _state);
        Directory.Delete(_state, recursive: true);
    }
}
