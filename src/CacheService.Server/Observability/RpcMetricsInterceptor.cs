using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace CacheService.Server.Observability;

/// <summary>
/// Times every gRPC call into <c>cacheservice_rpc_duration_seconds</c>. It runs outside the
/// error mapping, so it sees the status code the client gets.
/// </summary>
internal sealed class RpcMetricsInterceptor(CacheMetrics metrics) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
        Timed(context, () => continuation(request, context));

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation) =>
        Timed(context, () => continuation(requestStream, context));

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation) =>
        Timed(context, async () =>
        {
            await continuation(request, responseStream, context);
            return true;
        });

    private async Task<T> Timed<T>(ServerCallContext context, Func<Task<T>> call)
    {
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.OK;
        try
        {
            return await call();
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        catch
        {
            code = StatusCode.Unknown;
            throw;
        }
        finally
        {
            // "/cacheservice.v1.LayerCache/Lookup" -> "Lookup": a fixed, small set of label values.
            var method = context.Method[(context.Method.LastIndexOf('/') + 1)..];
            metrics.Rpc(method, code.ToString(), Stopwatch.GetElapsedTime(started));
        }
    }
}
