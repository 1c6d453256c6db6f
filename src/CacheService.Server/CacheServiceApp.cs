using System.Net;
using CacheService.Server.Access;
using CacheService.Server.Hosting;
using CacheService.Server.Observability;
using CacheService.Server.Registry;
using CacheService.Server.Rpc;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;

namespace CacheService.Server;

/// <summary>Builds the server: two Kestrel endpoints (gRPC over HTTP/2; metrics, status page and health over HTTP/1.1) and the cache behind them.</summary>
public static class CacheServiceApp
{
    /// <summary>
    /// Runs the server until it is stopped. Returns the process's exit code: 1, with one message
    /// saying what to fix, when it cannot start for a reason the person starting it can fix.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        try
        {
            await using var app = Create(args);
            await app.RunAsync();
            return 0;
        }
        catch (StartupException e)
        {
            return await RefusedAsync(e);
        }
        catch (IOException e) when (StartupChecks.Explain(e) is { } explained)
        {
            return await RefusedAsync(explained);
        }
    }

    private static async Task<int> RefusedAsync(StartupException reason)
    {
        await Console.Error.WriteLineAsync("CacheService cannot start: " + reason.Message);
        return 1;
    }

    /// <summary>Creates the application from command-line arguments and configuration.</summary>
    /// <exception cref="StartupException">An option is invalid, a port is taken, or the data directory is in use.</exception>
    /// <param name="args">Command-line arguments; <c>--CacheService:Server:GrpcPort=0</c> and the like override configuration.</param>
    /// <param name="configure">Lets tests replace services (e.g. the clock) before the app is built.</param>
    public static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // appsettings.json sits beside the assembly: found wherever the server is started from.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddCacheService();
        // Its errors are requests that failed before the interceptors (undecodable bytes, see
        // UndecodableRequests): a client error, not worth a stack trace per request.
        builder.Logging.AddFilter("Grpc.AspNetCore.Server.ServerCallHandler", LogLevel.Critical);
        // Polly logs every execution at Information: two lines per blob call drown the log. Its
        // retries and breaker changes are warnings and stay.
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        configure?.Invoke(builder);
        builder.WebHost.ConfigureKestrel((context, kestrel) =>
        {
            // Kestrel is configured while the app is built, before anything else reads options:
            // the first place where every invalid option can be reported at once.
            StartupChecks.Run(kestrel.ApplicationServices);
            var options = kestrel.ApplicationServices.GetRequiredService<IOptions<ServerOptions>>().Value;
            var endpoints = kestrel.ApplicationServices.GetRequiredService<ServerEndpoints>();
            var tls = kestrel.ApplicationServices.GetRequiredService<IOptions<TlsOptions>>().Value;
            var address = IPAddress.Parse(options.ListenAddress);
            // Layers stream in large volumes over one HTTP/2 stream. Kestrel's default receive
            // windows (96 KB a stream) make an upload wait for a window update every few frames.
            kestrel.Limits.Http2.InitialStreamWindowSize = options.Http2StreamWindowBytes;
            kestrel.Limits.Http2.InitialConnectionWindowSize = options.Http2StreamWindowBytes * 2;
            // Cleartext gRPC needs an HTTP/2-only endpoint (no TLS means no ALPN to negotiate it).
            kestrel.Listen(address, options.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                Secure(listen, tls, kestrel.ApplicationServices);
                endpoints.Grpc = listen;
            });
            kestrel.Listen(address, options.HttpPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                Secure(listen, tls, kestrel.ApplicationServices);
                endpoints.Http = listen;
            });
        });

        var app = builder.Build();
        app.Services.GetRequiredService<DataDirectoryLock>(); // before any service touches the directory
        app.UseUndecodableRequestsAsInvalid();
        app.MapGrpcService<LayerCacheGrpcService>();
        app.MapGrpcHealthChecksService();
        app.MapGrpcReflectionService();
        app.MapStatusEndpoints();
        app.MapRegistryEndpoints();
        app.MapRegistryTokenEndpoint();
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var endpoints = app.Services.GetRequiredService<ServerEndpoints>();
            var dataDirectory = Path.GetFullPath(app.Services.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory);
            Log.Listening(app.Logger, endpoints.GrpcPort, endpoints.HttpPort, dataDirectory);
        });
        return app;
    }

    // TLS from the reloading certificate store; with a client CA, client certificates are asked
    // for (required or not) and must chain to it, else the handshake fails.
    private static void Secure(ListenOptions listen, TlsOptions tls, IServiceProvider services)
    {
        if (!tls.Enabled)
        {
            return;
        }

        var certificates = services.GetRequiredService<ServerCertificates>();
        listen.UseHttps(https =>
        {
            https.ServerCertificateSelector = (_, _) => certificates.Certificate;
            if (!string.IsNullOrEmpty(tls.ClientCaFile))
            {
                https.ClientCertificateMode = tls.RequireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate;
                https.ClientCertificateValidation = (certificate, _, _) => certificates.IsTrustedClient(certificate);
            }
        });
    }
}

/// <summary>The two endpoints the server listens on, with their real ports once it has started.</summary>
public sealed class ServerEndpoints
{
    internal ListenOptions? Grpc { get; set; }

    internal ListenOptions? Http { get; set; }

    /// <summary>The bound gRPC port (HTTP/2).</summary>
    public int GrpcPort => Grpc?.IPEndPoint?.Port ?? throw new InvalidOperationException("the server has not started");

    /// <summary>The bound HTTP/1.1 port.</summary>
    public int HttpPort => Http?.IPEndPoint?.Port ?? throw new InvalidOperationException("the server has not started");
}
