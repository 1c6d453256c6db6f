using Grpc.Core;
using Microsoft.AspNetCore.Http.Features;

namespace CacheService.Server.Rpc;

/// <summary>
/// A gRPC request whose message cannot be decoded (bytes that are not protobuf) fails inside
/// grpc-dotnet before any interceptor runs, and it answers UNKNOWN, as for a server fault. Every
/// failure inside a handler goes through <see cref="ErrorMappingInterceptor"/>, which never answers
/// UNKNOWN, so an UNKNOWN status here is always the client's bytes: it leaves as INVALID_ARGUMENT.
/// grpc-dotnet's own error log of such calls (a stack trace a client could flood the log with) is
/// filtered out in <see cref="CacheServiceApp"/>.
/// </summary>
internal static class UndecodableRequests
{
    private const string StatusHeader = "grpc-status";
    private const string MessageHeader = "grpc-message";
    private static readonly string Unknown = ((int)StatusCode.Unknown).ToString(System.Globalization.CultureInfo.InvariantCulture);
    private static readonly string InvalidArgument = ((int)StatusCode.InvalidArgument).ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static void UseUndecodableRequestsAsInvalid(this WebApplication app) => app.Use(async (http, next) =>
    {
        if (http.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await next(http);
            return;
        }

        // A call that fails before its first message answers "trailers-only": the status is in the headers.
        http.Response.OnStarting(() =>
        {
            Rewrite(http.Response.Headers);
            return Task.CompletedTask;
        });
        await next(http);
        if (http.Features.Get<IHttpResponseTrailersFeature>() is { } trailers)
        {
            Rewrite(trailers.Trailers);
        }
    });

    private static void Rewrite(IHeaderDictionary headers)
    {
        if (headers.TryGetValue(StatusHeader, out var status) && status == Unknown)
        {
            headers[StatusHeader] = InvalidArgument;
            headers[MessageHeader] = "request: not a valid protobuf message of this method's type";
        }
    }
}
