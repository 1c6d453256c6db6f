using CacheService.Api.V1;
using CacheService.Server;
using CacheService.Server.Hosting;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace CacheService.Testing;

/// <summary>
/// The real server, in process, on real Kestrel ports picked by the OS, with a data directory of
/// its own and a clock the test moves. Dispose stops it; <see cref="RestartAsync"/> starts a new
/// process-equivalent on the same data directory.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly string[] _extraArgs;
    private readonly Action<IServiceCollection>? _services;
    private WebApplication? _app;
    private GrpcChannel _channel = null!;

    private TestServer(string dataDirectory, string[] extraArgs, Action<IServiceCollection>? services)
    {
        DataDirectory = dataDirectory;
        _extraArgs = extraArgs;
        _services = services;
    }

    public string DataDirectory { get; }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    public LayerCache.LayerCacheClient Client { get; private set; } = null!;

    public GrpcChannel Channel => _channel;

    public IServiceProvider Services => _app!.Services;

    public int HttpPort { get; private set; }

    /// <summary>The gRPC address, e.g. <c>http://127.0.0.1:40123</c> (<c>https</c> with TLS); it changes on restart.</summary>
    public string GrpcAddress { get; private set; } = "";

    /// <summary>Starts a server; <paramref name="args"/> are extra configuration overrides.</summary>
    public static Task<TestServer> StartAsync(params string[] args) => StartAsync(null, args);

    /// <summary>Starts a server whose services <paramref name="services"/> may replace.</summary>
    public static async Task<TestServer> StartAsync(Action<IServiceCollection>? services, params string[] args)
    {
        var server = new TestServer(Directory.CreateTempSubdirectory("cs-server-").FullName, args, services);
        try
        {
            await server.StartAppAsync();
            return server;
        }
        catch
        {
            Directory.Delete(server.DataDirectory, recursive: true); // a server that never started leaves nothing
            throw;
        }
    }

    /// <summary>Stops the server and starts it again on the same data directory (new ports).</summary>
    public async Task RestartAsync()
    {
        await StopAppAsync();
        await StartAppAsync();
    }

    /// <summary>Stops serving, keeping the data directory; <see cref="StartAgainAsync"/> serves it again.</summary>
    public Task StopAsync() => StopAppAsync();

    /// <summary>Serves the data directory again after <see cref="StopAsync"/> (new ports).</summary>
    public Task StartAgainAsync() => StartAppAsync();

    /// <summary>
    /// Polls <c>/readyz</c> until it answers <paramref name="expected"/> (true: 200, false: 503)
    /// or 30 seconds pass; returns whether it did. Backends reconnect on their own schedule.
    /// </summary>
    public async Task<bool> WaitForReadinessAsync(bool expected)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var until = DateTime.UtcNow.AddSeconds(30);
        do
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{HttpPort}/readyz");
            if (response.IsSuccessStatusCode == expected)
            {
                return true;
            }

            await Task.Delay(200);
        }
        while (DateTime.UtcNow < until);
        return false;
    }

    /// <summary>
    /// Moves the clock by <paramref name="step"/> until the periodic work <paramref name="name"/>
    /// has run at least <paramref name="rounds"/> times (its loop starts on a thread of its own,
    /// so its timer may not exist yet); fails after 400 steps.
    /// </summary>
    public async Task RunPeriodicWorkAsync(string name, long rounds, TimeSpan step)
    {
        var work = Services.GetServices<IHostedService>().OfType<PeriodicWork>().Single(w => w.Name == name);
        for (var attempt = 0; attempt < 400 && work.Rounds < rounds; attempt++)
        {
            Time.Advance(step);
            await Task.Delay(25);
        }

        if (work.Rounds < rounds)
        {
            throw new TimeoutException($"{name} ran {work.Rounds} times, not {rounds}");
        }
    }

    /// <summary>How many times the periodic work <paramref name="name"/> has run.</summary>
    public long Rounds(string name) => Services.GetServices<IHostedService>().OfType<PeriodicWork>().Single(w => w.Name == name).Rounds;

    /// <summary>The value of one series on <c>/metrics</c> (exact name and labels), 0 when it is absent.</summary>
    public async Task<double> MetricAsync(string series)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{HttpPort}/metrics");
        var line = text.Split('\n').FirstOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    public string BlobPath(string ns, string digest) =>
        Path.Combine(DataDirectory, "blobs", ns, "blobs", "sha256", digest["sha256:".Length..]);

    public async ValueTask DisposeAsync()
    {
        await StopAppAsync();
        Directory.Delete(DataDirectory, recursive: true);
    }

    private async Task StartAppAsync()
    {
        string[] args =
        [
            "--CacheService:Server:GrpcPort=0",
            "--CacheService:Server:HttpPort=0",
            $"--CacheService:Storage:DataDirectory={DataDirectory}",
            "--CacheService:Eviction:CollectionInterval=1.00:00:00",
            "--Logging:LogLevel:Default=Warning",
            .. _extraArgs,
        ];
        _app = CacheServiceApp.Create(args, builder =>
        {
            builder.Services.AddSingleton<TimeProvider>(Time);
            _services?.Invoke(builder.Services);
        });
        await _app.StartAsync();
        var endpoints = _app.Services.GetRequiredService<ServerEndpoints>();
        HttpPort = endpoints.HttpPort;
        var tls = args.Any(a => a.StartsWith("--CacheService:Tls:CertificateFile=", StringComparison.Ordinal));
        GrpcAddress = $"{(tls ? "https" : "http")}://127.0.0.1:{endpoints.GrpcPort}";
        _channel = GrpcChannel.ForAddress(GrpcAddress);
        Client = new LayerCache.LayerCacheClient(_channel);
    }

    private async Task StopAppAsync()
    {
        if (_app is null)
        {
            return;
        }

        _channel.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }
}
