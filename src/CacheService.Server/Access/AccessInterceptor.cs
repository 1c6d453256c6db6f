using CacheService.Core.Access;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace CacheService.Server.Access;

/// <summary>
/// Authenticates every call of the LayerCache service before its handler runs, and hands the
/// handler the <see cref="Caller"/> to check against (<c>context.Caller()</c>). A
/// handler that returns without having checked anything is a bug that would serve anyone: it
/// fails the call instead. The health and reflection services are not behind it: probes carry
/// no tokens, and the schema is public.
/// </summary>
internal sealed class AccessInterceptor(Authenticator authenticator) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var caller = Authenticate(context);
        var response = await continuation(request, context);
        EnsureChecked(caller, context);
        return response;
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var caller = Authenticate(context);
        var response = await continuation(requestStream, context);
        EnsureChecked(caller, context);
        return response;
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var caller = Authenticate(context);
        await continuation(request, responseStream, context);
        EnsureChecked(caller, context);
    }

    private Caller Authenticate(ServerCallContext context)
    {
        var http = context.GetHttpContext();
        var caller = authenticator.Authenticate(http);
        if (caller.IsAnonymous && !authenticator.AnonymousAllowed)
        {
            // Refused before the handler reads a byte of the request (an upload's stream included).
            caller.RequireAnyScope();
        }

        http.Items[typeof(Caller)] = caller;
        return caller;
    }

    private static void EnsureChecked(Caller caller, ServerCallContext context)
    {
        if (!caller.WasChecked)
        {
            throw new InvalidOperationException($"{context.Method} returned without an access check");
        }
    }
}

/// <summary>The caller of a request, as the access layer found it.</summary>
internal static class CallerAccess
{
    /// <summary>The authenticated caller of a gRPC call.</summary>
    public static Caller Caller(this ServerCallContext context) => context.GetHttpContext().Caller();

    /// <summary>The authenticated caller of an HTTP request.</summary>
    public static Caller Caller(this HttpContext http) =>
        http.Items[typeof(Caller)] as Caller ?? throw new InvalidOperationException("the request was not authenticated");

    /// <summary>The client's IP address as text (an IPv4 address mapped into IPv6 is written as IPv4).</summary>
    public static string ClientAddress(this HttpContext http) =>
        (http.Connection.RemoteIpAddress is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : http.Connection.RemoteIpAddress ?? System.Net.IPAddress.None).ToString();
}
