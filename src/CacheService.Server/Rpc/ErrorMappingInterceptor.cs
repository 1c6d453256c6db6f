using CacheService.Core;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace CacheService.Server.Rpc;

/// <summary>
/// The one place where failures become gRPC status codes (DESIGN.md §3). Handlers throw the
/// core's exceptions; clients see a status and a message meant for them, never a stack trace or a
/// backend's own error text.
/// </summary>
internal sealed class ErrorMappingInterceptor(ILogger<ErrorMappingInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context);
        }
    }

    private RpcException Map(Exception e, ServerCallContext context)
    {
        // A call its client gave up on (deadline, cancellation) fails however the work noticed it:
        // a write to a finished response, a cancelled read. That is the client's doing, not a fault.
        var status = e switch
        {
            _ when context.Deadline <= DateTime.UtcNow => new Status(StatusCode.DeadlineExceeded, "deadline exceeded"),
            _ when context.CancellationToken.IsCancellationRequested => new Status(StatusCode.Cancelled, "cancelled"),
            InvalidFieldException => new Status(StatusCode.InvalidArgument, e.Message),
            Google.Protobuf.InvalidProtocolBufferException => new Status(StatusCode.InvalidArgument, "request: not a valid protobuf message of this method's type"),
            BlobNotFoundException => new Status(StatusCode.NotFound, e.Message),
            PreconditionFailedException => new Status(StatusCode.FailedPrecondition, e.Message),
            QuotaExceededException => new Status(StatusCode.ResourceExhausted, e.Message),
            BlobCorruptedException => new Status(StatusCode.DataLoss, e.Message),
            BackendUnavailableException => new Status(StatusCode.Unavailable, e.Message),
            NotAuthenticatedException => new Status(StatusCode.Unauthenticated, e.Message),
            AccessDeniedException => new Status(StatusCode.PermissionDenied, e.Message),
            TooManyAttemptsException => new Status(StatusCode.ResourceExhausted, e.Message),
            _ => new Status(StatusCode.Internal, "internal error"),
        };

        // A backend outage was counted and logged where the core met it (its observer).
        if (status.StatusCode == StatusCode.Internal)
        {
            Log.UnexpectedFailure(logger, e, context.Method);
        }

        return new RpcException(status);
    }
}
