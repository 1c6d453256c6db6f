using CacheService.Core;
using CacheService.Core.Access;
using CacheService.Core.Commits;
using CacheService.Core.Keys;
using CacheService.Core.Lookups;
using CacheService.Core.Options;
using CacheService.Core.Transfers;
using CacheService.Server.Access;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;
using Wire = CacheService.Api.V1;

namespace CacheService.Server.Rpc;

/// <summary>
/// The LayerCache gRPC service: checks requests and the caller's scopes, calls the core, shapes
/// answers. Counting, repair and degradation happen in the core; errors are mapped to status
/// codes by <see cref="ErrorMappingInterceptor"/>, not here. Every handler checks the caller
/// (<see cref="AccessInterceptor"/> fails a call whose handler did not) and every write and delete
/// goes to the <see cref="AuditLog"/>.
/// </summary>
internal sealed class LayerCacheGrpcService(
    KeyDerivation keys,
    CacheLookups lookups,
    LayerCommits commits,
    LayerTransfers transfers,
    DirectTransfers direct,
    NamespaceAdministration admin,
    AuditLog audit,
    IOptions<LimitsOptions> limitOptions,
    TimeProvider time) : Wire.LayerCache.LayerCacheBase
{
    private readonly LimitsOptions _limits = limitOptions.Value;

    public override Task<Wire.ComputeKeyResponse> ComputeKey(Wire.ComputeKeyRequest request, ServerCallContext context)
    {
        context.Caller().RequireAnyScope();
        var key = keys.Derive(
            Requests.Digest(request.ParentState, "parent_state"), request.Platform, Requests.Step(request.Step, "step"), "step");
        return Task.FromResult(new Wire.ComputeKeyResponse
        {
            Key = key.Key.Value,
            NormalizedInstruction = key.NormalizedInstruction,
            LayerStep = key.IsLayerStep,
        });
    }

    public override async Task<Wire.LookupResponse> Lookup(Wire.LookupRequest request, ServerCallContext context)
    {
        var namespaces = Readable(context.Caller(), Requests.Namespaces(request.Namespace, request.FallbackNamespaces, _limits.MaxBatch));
        var result = await lookups.LookupAsync(namespaces, Requests.Digest(request.Key, "key"), context.CancellationToken);
        var response = new Wire.LookupResponse { Hit = result.Entry is not null, Degraded = result.Degraded };
        if (result.Entry is not null)
        {
            response.Layer = Requests.ToWire(result.Entry.Layer);
            response.Namespace = result.Namespace;
        }

        return response;
    }

    public override async Task<Wire.ResolveChainResponse> ResolveChain(Wire.ResolveChainRequest request, ServerCallContext context)
    {
        var namespaces = Readable(context.Caller(), Requests.Namespaces(request.Namespace, request.FallbackNamespaces, _limits.MaxBatch));
        var baseState = Requests.Digest(request.BaseState, "base_state");
        if (request.Steps.Count > _limits.MaxChainSteps)
        {
            throw new InvalidFieldException("steps", $"has more than {_limits.MaxChainSteps} entries");
        }

        var steps = request.Steps.Select((s, i) => Requests.Step(s, $"steps[{i}]")).ToList();
        var chain = await lookups.ResolveChainAsync(namespaces, baseState, request.Platform, steps, context.CancellationToken);
        var response = new Wire.ResolveChainResponse { CachedSteps = chain.CachedSteps, Degraded = chain.Degraded };
        foreach (var step in chain.Steps)
        {
            var wire = new Wire.ResolvedStep
            {
                Status = step.Outcome switch
                {
                    StepOutcome.Hit => Wire.StepStatus.Hit,
                    StepOutcome.Miss => Wire.StepStatus.Miss,
                    StepOutcome.Config => Wire.StepStatus.Config,
                    _ => Wire.StepStatus.Pending,
                },
                Key = step.Key?.Value ?? string.Empty,
                Namespace = step.Namespace ?? string.Empty,
                State = step.StateAfter?.Value ?? string.Empty,
                CreatedAtUnix = step.Created?.ToUnixTimeSeconds() ?? 0,
            };
            if (step.Layer is not null)
            {
                wire.Layer = Requests.ToWire(step.Layer);
            }

            response.Steps.Add(wire);
        }

        return response;
    }

    public override async Task<Wire.CommitResponse> Commit(Wire.CommitRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Write, ns);
        var key = Requests.Digest(request.Key, "key");
        var layer = Requests.Layer(request.Layer);
        KeyInputs? inputs = null;
        if (request.Step is not null)
        {
            inputs = new KeyInputs(Requests.Digest(request.ParentState, "parent_state"), request.Platform, Requests.Step(request.Step, "step"));
        }

        var outcome = await commits.CommitLayerAsync(ns, key, layer, inputs, context.CancellationToken);
        audit.Written(context.GetHttpContext(), "commit", ns, key.Value, outcome.Entry.Layer.Digest.Value);
        return new Wire.CommitResponse
        {
            Created = outcome.Created,
            Layer = Requests.ToWire(outcome.Entry.Layer),
            EvictedEntries = outcome.Evicted.Count,
        };
    }

    public override async Task<Wire.UploadLayerResponse> UploadLayer(IAsyncStreamReader<Wire.UploadLayerRequest> requestStream, ServerCallContext context)
    {
        if (!await requestStream.MoveNext(context.CancellationToken) || requestStream.Current.PayloadCase != Wire.UploadLayerRequest.PayloadOneofCase.Header)
        {
            throw new InvalidFieldException("header", "the first message must carry the header");
        }

        var header = requestStream.Current.Header;
        var ns = Requests.Namespace(header.Namespace, "header.namespace");
        context.Caller().Require(AccessLevel.Write, ns);
        var digest = Requests.Digest(header.Digest, "header.digest");
        var stored = await transfers.UploadAsync(ns, digest, header.Size, new UploadChunkStream(requestStream, _limits.UploadIdleTimeout, time), context.CancellationToken);
        audit.Written(context.GetHttpContext(), "upload", ns, digest.Value, digest.Value);
        return new Wire.UploadLayerResponse
        {
            Layer = new Wire.LayerDescriptor { Digest = digest.Value, Size = header.Size, MediaType = header.MediaType },
            AlreadyExisted = !stored,
        };
    }

    public override async Task DownloadLayer(Wire.DownloadLayerRequest request, IServerStreamWriter<Wire.DownloadLayerResponse> responseStream, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Read, ns);
        var digest = Requests.Digest(request.Digest, "digest");
        await foreach (var chunk in transfers.DownloadAsync(ns, digest, request.Offset, context.CancellationToken))
        {
            // No copy: WriteAsync has serialized the message when it returns, and only then does
            // the enumerator reuse the buffer behind the chunk.
            var message = new Wire.DownloadLayerResponse { Chunk = UnsafeByteOperations.UnsafeWrap(chunk) };
            await responseStream.WriteAsync(message, context.CancellationToken);
        }
    }

    public override async Task<Wire.StatLayersResponse> StatLayers(Wire.StatLayersRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Read, ns);
        var digests = Requests.Digests(request.Digests, "digests", _limits.MaxBatch);
        var present = await transfers.StatAsync(ns, digests, context.CancellationToken);
        var response = new Wire.StatLayersResponse();
        response.Present.AddRange(present.Select(b => new Wire.LayerDescriptor { Digest = b.Digest.Value, Size = b.Size }));
        response.Missing.AddRange(digests.Except(present.Select(b => b.Digest)).Select(d => d.Value));
        return response;
    }

    public override async Task<Wire.NamespaceStats> GetStats(Wire.GetStatsRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Read, ns);
        var usage = await admin.GetUsageAsync(ns, context.CancellationToken);
        return new Wire.NamespaceStats
        {
            Namespace = ns,
            Lookups = usage.Lookups,
            Hits = usage.Hits,
            Misses = usage.Misses,
            HitRatio = usage.HitRatio,
            Entries = usage.Entries,
            StoredBytes = usage.StoredBytes,
            Evictions = usage.Evictions,
            BytesUploaded = usage.BytesUploaded,
            BytesDownloaded = usage.BytesDownloaded,
        };
    }

    public override async Task<Wire.DeleteResponse> Delete(Wire.DeleteRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Write, ns);
        if (request.All == (request.Keys.Count > 0))
        {
            throw new InvalidFieldException("keys", "give either keys or all=true");
        }

        var keys = request.All ? null : Requests.Digests(request.Keys, "keys", _limits.MaxBatch);
        var deleted = await admin.DeleteAsync(ns, keys, context.CancellationToken);
        audit.Written(context.GetHttpContext(), "delete", ns, keys is null ? "*" : string.Join(',', keys.Select(k => k.Value)), null);
        return new Wire.DeleteResponse { Deleted = deleted };
    }

    public override async Task<Wire.VerifyResponse> Verify(Wire.VerifyRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Read, ns);
        var problems = await admin.VerifyAsync(ns, context.CancellationToken);
        var response = new Wire.VerifyResponse { Consistent = problems.Count == 0 };
        response.Problems.AddRange(problems);
        return response;
    }

    public override async Task<Wire.PresignLayerResponse> PresignLayer(Wire.PresignLayerRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        var digest = Requests.Digest(request.Digest, "digest");
        var level = request.Direction switch
        {
            Wire.TransferDirection.Download => AccessLevel.Read,
            Wire.TransferDirection.Upload => AccessLevel.Write,
            _ => throw new InvalidFieldException("direction", "must be DOWNLOAD or UPLOAD"),
        };
        context.Caller().Require(level, ns);
        var url = level == AccessLevel.Read
            ? await direct.PresignDownloadAsync(ns, digest, context.CancellationToken)
            : await direct.PresignUploadAsync(ns, digest, context.CancellationToken);
        return url is null
            ? new Wire.PresignLayerResponse { AlreadyExists = true }
            : new Wire.PresignLayerResponse { Url = url.Url.ToString(), ExpiresAt = url.ExpiresAt.ToUnixTimeSeconds(), UploadId = url.UploadId ?? string.Empty };
    }

    public override async Task<Wire.CompleteDirectUploadResponse> CompleteDirectUpload(Wire.CompleteDirectUploadRequest request, ServerCallContext context)
    {
        var ns = Requests.Namespace(request.Namespace);
        context.Caller().Require(AccessLevel.Write, ns);
        var digest = Requests.Digest(request.Digest, "digest");
        var published = await direct.CompleteUploadAsync(ns, request.UploadId, digest, request.Size, context.CancellationToken);
        audit.Written(context.GetHttpContext(), "upload", ns, digest.Value, digest.Value);
        return new Wire.CompleteDirectUploadResponse
        {
            Layer = new Wire.LayerDescriptor { Digest = digest.Value, Size = request.Size, MediaType = request.MediaType },
            AlreadyExisted = !published,
        };
    }

    // The first namespace is the one asked about: it must be readable. A fallback the caller may
    // not read is skipped, as if it held nothing: a pull request's token reads main only if it may.
    private static IReadOnlyList<string> Readable(Caller caller, IReadOnlyList<string> namespaces)
    {
        caller.Require(AccessLevel.Read, namespaces[0]);
        return [namespaces[0], .. namespaces.Skip(1).Where(ns => caller.Allows(AccessLevel.Read, ns))];
    }
}
