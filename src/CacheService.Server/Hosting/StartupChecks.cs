using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Hosting;

/// <summary>
/// A reason the server cannot start that the person starting it can fix: the message says what
/// and how, and the process exits 1 with it alone, no stack trace.
/// </summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// What the server checks before anything runs: every invalid option of every section, reported
/// at once, and the ports it is about to listen on.
/// </summary>
internal static class StartupChecks
{
    /// <exception cref="StartupException">An option is invalid, or a port is taken.</exception>
    public static void Run(IServiceProvider services)
    {
        try
        {
            services.GetRequiredService<IStartupValidator>().Validate();
        }
        catch (Exception e) when (e is OptionsValidationException or AggregateException or InvalidOperationException)
        {
            // A validator that reads another section (Auth reads Server) repeats that section's
            // problems. A value that does not bind at all (a word for a number) is an
            // InvalidOperationException from the binder, which ends validation: it comes alone.
            var problems = Failures(e).Distinct(StringComparer.Ordinal);
            throw new StartupException("invalid configuration:" + string.Concat(problems.Select(p => "\n  " + p)), e);
        }

        var server = services.GetRequiredService<IOptions<ServerOptions>>().Value;
        ThrowIfTaken(server.ListenAddress, server.GrpcPort, "gRPC", "PORT", "GrpcPort");
        ThrowIfTaken(server.ListenAddress, server.HttpPort, "HTTP", "HTTP_PORT", "HttpPort");
    }

    /// <summary>Kestrel's bind failure, which a port taken after the check still meets, as a <see cref="StartupException"/>.</summary>
    public static StartupException? Explain(IOException bindFailure) =>
        bindFailure.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
            ? new StartupException($"{bindFailure.Message} Choose free ports: make run PORT=... HTTP_PORT=..., or --CacheService:Server:GrpcPort=... --CacheService:Server:HttpPort=...", bindFailure)
            : null;

    private static IEnumerable<string> Failures(Exception e) => e switch
    {
        AggregateException all => all.InnerExceptions.SelectMany(Failures),
        OptionsValidationException options => options.Failures,
        _ => [e.Message],
    };

    private static void ThrowIfTaken(string address, int port, string what, string makeVariable, string option)
    {
        if (port == 0)
        {
            return; // the system picks a free one
        }

        try
        {
            var probe = new TcpListener(IPAddress.Parse(address), port);
            probe.Start();
            probe.Stop();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new StartupException(
                $"the {what} port {port} on {address} is in use: stop what holds it, or choose another (make run {makeVariable}={port + 1}, or --CacheService:Server:{option}={port + 1})", e);
        }
    }
}
