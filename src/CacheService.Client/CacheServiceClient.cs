using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using CacheService.Core;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Polly;
using Polly.Retry;
using Wire = CacheService.Api.V1;

namespace CacheService.Client;

/// <summary>
/// Typed calls over the CacheService v1 API for builders. Every attempt carries a deadline.
/// Calls that are safe to repeat (key derivation, lookups, commit, which is first-writer-wins,
/// stats and downloads, which resume where the failed attempt stopped) are retried on
/// <c>UNAVAILABLE</c> with exponential backoff; uploads and deletes are not, because their request
/// stream is consumed or their answer would count twice. The client is thread-safe; share one.
/// </summary>
public sealed class CacheServiceClient : IDisposable
{
    private readonly GrpcChannel? _ownedChannel;
    private readonly Wire.LayerCache.LayerCacheClient _client;
    private readonly CacheServiceClientOptions _options;
    private readonly ResiliencePipeline _idempotent;

    /// <summary>Connects to <see cref="CacheServiceClientOptions.Address"/>.</summary>
    public CacheServiceClient(CacheServiceClientOptions options)
        : this(GrpcChannel.ForAddress(options?.Address ?? throw new ArgumentNullException(nameof(options)), new GrpcChannelOptions { HttpHandler = Handler(options) }), options)
    {
    }

    /// <summary>Calls through <paramref name="invoker"/> (e.g. an intercepted channel), which the caller keeps and disposes.</summary>
    public CacheServiceClient(CallInvoker invoker, CacheServiceClientOptions? options = null)
        : this(null, invoker ?? throw new ArgumentNullException(nameof(invoker)), options ?? new CacheServiceClientOptions())
    {
    }

    // The connection's TLS: the CA file's certificates as the only roots, and a client certificate
    // for mutual TLS. Without either, the channel's own default handler.
    private static SocketsHttpHandler? Handler(CacheServiceClientOptions options)
    {
        if (string.IsNullOrEmpty(options.CaFile) && string.IsNullOrEmpty(options.ClientCertificateFile))
        {
            return null;
        }

        var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true };
        if (options.CaFile is { Length: > 0 } caFile)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
                {
                    return false; // no certificate, or one for another name
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.AddRange(roots);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(new X509Certificate2(certificate));
            };
        }

        if (options.ClientCertificateFile is { Length: > 0 } certificateFile)
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificateFile, options.ClientKeyFile);
            handler.SslOptions.ClientCertificates = [X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null)];
        }

        return handler;
    }

    private CacheServiceClient(GrpcChannel channel, CacheServiceClientOptions options)
        : this(channel, channel.CreateCallInvoker(), options)
    {
    }

    private CacheServiceClient(GrpcChannel? ownedChannel, CallInvoker invoker, CacheServiceClientOptions options)
    {
        _options = options;
        _ownedChannel = ownedChannel;
        if (options.Token is { } token)
        {
            var bearer = "Bearer " + token;
            invoker = invoker.Intercept(metadata =>
            {
                metadata.Add("authorization", bearer);
                return metadata;
            });
        }

        _client = new Wire.LayerCache.LayerCacheClient(invoker);
        var builder = new ResiliencePipelineBuilder { TimeProvider = options.TimeProvider };
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<RpcException>(e => e.StatusCode == StatusCode.Unavailable),
                MaxRetryAttempts = options.MaxRetries,
                Delay = options.RetryDelay,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
            });
        }

        _idempotent = builder.Build();
    }

    /// <summary>Derives a key on the server (the SDK can also call <see cref="Core.Keys.CacheKeyV2"/> directly).</summary>
    public Task<Wire.ComputeKeyResponse> ComputeKeyAsync(Wire.ComputeKeyRequest request, CancellationToken cancellationToken = default) =>
        Idempotent(ct => _client.ComputeKeyAsync(request, deadline: Deadline(), cancellationToken: ct).ResponseAsync, cancellationToken);

    /// <summary>Looks one key up in <paramref name="ns"/>, then in each fallback namespace.</summary>
    public Task<Wire.LookupResponse> LookupAsync(string ns, Digest key, IEnumerable<string>? fallbackNamespaces = null, CancellationToken cancellationToken = default)
    {
        var request = new Wire.LookupRequest { Namespace = ns, Key = key.Value };
        request.FallbackNamespaces.AddRange(fallbackNamespaces ?? []);
        return Idempotent(ct => _client.LookupAsync(request, deadline: Deadline(), cancellationToken: ct).ResponseAsync, cancellationToken);
    }

    /// <summary>Finds the longest cached prefix of a chain of steps in one round trip.</summary>
    public Task<Wire.ResolveChainResponse> ResolveChainAsync(Wire.ResolveChainRequest request, CancellationToken cancellationToken = default) =>
        Idempotent(ct => _client.ResolveChainAsync(request, deadline: Deadline(), cancellationToken: ct).ResponseAsync, cancellationToken);

    /// <summary>Records <c>key -> layer</c>; the first writer wins, so repeating it is safe.</summary>
    public Task<Wire.CommitResponse> CommitAsync(Wire.CommitRequest request, CancellationToken cancellationToken = default) =>
        Idempotent(ct => _client.CommitAsync(request, deadline: Deadline(), cancellationToken: ct).ResponseAsync, cancellationToken);

    /// <summary>Which of <paramref name="digests"/> the namespace holds.</summary>
    public Task<Wire.StatLayersResponse> StatLayersAsync(string ns, IEnumerable<string> digests, CancellationToken cancellationToken = default)
    {
        var request = new Wire.StatLayersRequest { Namespace = ns };
        request.Digests.AddRange(digests);
        return Idempotent(ct => _client.StatLayersAsync(request, deadline: Deadline(), cancellationToken: ct).ResponseAsync, cancellationToken);
    }

    /// <summary>Hit-rate and storage figures of one namespace.</summary>
    public Task<Wire.NamespaceStats> GetStatsAsync(string ns, CancellationToken cancellationToken = default) =>
        Idempotent(ct => _client.GetStatsAsync(new Wire.GetStatsRequest { Namespace = ns }, deadline: Deadline(), cancellationToken: ct).ResponseAsync, cancellationToken);

    /// <summary>Drops keys of a namespace; returns how many entries went. Not retried.</summary>
    public async Task<long> DeleteAsync(string ns, IEnumerable<Digest> keys, CancellationToken cancellationToken = default)
    {
        var request = new Wire.DeleteRequest { Namespace = ns };
        request.Keys.AddRange(keys.Select(k => k.Value));
        var response = await _client.DeleteAsync(request, deadline: Deadline(), cancellationToken: cancellationToken);
        return response.Deleted;
    }

    /// <summary>
    /// Streams <paramref name="size"/> bytes of <paramref name="content"/> as the blob
    /// <paramref name="digest"/>. The server publishes it only if digest and size match; when it
    /// already holds the blob it answers before the stream ends. <paramref name="progress"/> hears
    /// the bytes sent so far. Not retried: the caller owns the stream.
    /// </summary>
    public async Task<Wire.UploadLayerResponse> UploadAsync(
        string ns, Stream content, Digest digest, long size, string mediaType, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        using var call = _client.UploadLayer(deadline: Deadline(_options.TransferTimeout), cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new Wire.UploadLayerRequest
        {
            Header = new Wire.UploadHeader { Namespace = ns, Digest = digest.Value, Size = size, MediaType = mediaType },
        }, cancellationToken);
        var buffer = new byte[_options.ChunkSize];
        long sent = 0;
        int read;
        while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
        {
            try
            {
                await call.RequestStream.WriteAsync(new Wire.UploadLayerRequest { Chunk = ByteString.CopyFrom(buffer, 0, read) }, cancellationToken);
            }
            catch (RpcException)
            {
                break; // the server answered early; its response says why
            }
            catch (InvalidOperationException)
            {
                break; // the call completed while we were writing
            }

            sent += read;
            progress?.Report(sent);
        }

        await call.RequestStream.CompleteAsync();
        var response = await call.ResponseAsync;
        progress?.Report(size);
        return response;
    }

    /// <summary>
    /// Writes the blob <paramref name="digest"/> from byte <paramref name="offset"/> on to
    /// <paramref name="destination"/> and returns the bytes written. The server verifies the bytes
    /// as it sends them (<c>DATA_LOSS</c> on corruption). After a transient failure the next
    /// attempt resumes where the last one stopped. <paramref name="progress"/> hears the offset reached.
    /// </summary>
    public async Task<long> DownloadAsync(
        string ns, Digest digest, Stream destination, long offset = 0, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        long written = 0;
        await _idempotent.ExecuteAsync(
            async ct =>
            {
                var request = new Wire.DownloadLayerRequest { Namespace = ns, Digest = digest.Value, Offset = offset + written };
                using var call = _client.DownloadLayer(request, deadline: Deadline(_options.TransferTimeout), cancellationToken: ct);
                while (await call.ResponseStream.MoveNext(ct))
                {
                    var chunk = call.ResponseStream.Current.Chunk.Memory;
                    await destination.WriteAsync(chunk, ct);
                    written += chunk.Length;
                    progress?.Report(offset + written);
                }
            },
            cancellationToken);
        return written;
    }

    /// <inheritdoc/>
    public void Dispose() => _ownedChannel?.Dispose();

    private DateTime Deadline(TimeSpan? timeout = null) =>
        _options.TimeProvider.GetUtcNow().UtcDateTime + (timeout ?? _options.CallTimeout);

    private async Task<T> Idempotent<T>(Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken) =>
        await _idempotent.ExecuteAsync(async ct => await call(ct), cancellationToken);
}
