using CacheService.Client;
using CacheService.Core;
using CacheService.Core.Keys;
using Grpc.Core;
using Wire = CacheService.Api.V1;

namespace CacheService.Build;

/// <summary>A layer the cache holds for a key, and the namespace that holds it (a fallback's, maybe).</summary>
public sealed record CacheHit(ImageLayer Layer, string Namespace);

/// <summary>
/// The cache as one build sees it. A cache never breaks a build: an unreachable server turns the
/// rest of the build into a plain build (one warning), a degraded answer is a miss, and a layer
/// that cannot be fetched or stored is built or kept locally instead.
/// </summary>
public sealed class CacheSession(CacheServiceClient? client, string ns, IReadOnlyList<string> fallbacks, IBuildProgress progress)
{
    private volatile CacheServiceClient? _client = client; // cleared by whichever call finds the server gone
    private bool _warnedDegraded;

    /// <summary>The layer cached under <paramref name="key"/>, or null on a miss (or without a cache).</summary>
    public async Task<CacheHit?> LookupAsync(Digest key, CancellationToken cancellationToken)
    {
        var response = await CallAsync(c => c.LookupAsync(ns, key, fallbacks, cancellationToken), "look up a step", cancellationToken);
        if (response is { Degraded: true } && !_warnedDegraded)
        {
            _warnedDegraded = true;
            progress.Warning("the cache's index did not answer in time; such steps are built, not fetched");
        }

        return response is { Hit: true, Layer: { } layer }
            ? new CacheHit(new ImageLayer(Digest.Parse(layer.Digest, "digest"), Digest.Parse(layer.DiffId, "diff_id"), layer.Size, layer.MediaType), response.Namespace)
            : null;
    }

    /// <summary>
    /// Downloads the layer of <paramref name="hit"/> into <paramref name="layout"/>, checking its
    /// digest and its diff id; false (and nothing left behind) when it cannot be had intact.
    /// </summary>
    public async Task<bool> DownloadAsync(CacheHit hit, OciLayout layout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(hit);
        ArgumentNullException.ThrowIfNull(layout);
        var layer = hit.Layer;
        var path = layout.BlobPath(layer.Digest);
        if (File.Exists(path))
        {
            return true;
        }

        var partial = path + ".download";
        try
        {
            await using (var file = File.Create(partial))
            {
                var fetched = await CallAsync(
                    async c => (object)await c.DownloadAsync(hit.Namespace, layer.Digest, file, progress: new Progress(progress, "pull", layer.Size), cancellationToken: cancellationToken),
                    "download a layer", cancellationToken);
                if (fetched is null)
                {
                    return false;
                }
            }

            var found = await LayerFile.DescribeAsync(partial, cancellationToken);
            if (found.Digest != layer.Digest || found.DiffId != layer.DiffId)
            {
                progress.Warning($"layer {layer.Digest} came back as {found.Digest} (diff id {found.DiffId}, expected {layer.DiffId}); building the step instead");
                return false;
            }

            File.Move(partial, path, overwrite: true);
            return true;
        }
        catch (InvalidFieldException e)
        {
            progress.Warning($"layer {layer.Digest} is no layer ({e.Message}); building the step instead");
            return false;
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>
    /// Uploads a built layer and commits it under the step's key, with the key's inputs; a failure
    /// is a warning. Safe to run beside the build's next steps (it draws no progress bar).
    /// </summary>
    public async Task PublishAsync(ImageLayer layer, string blob, StepKeyInput inputs, Digest key, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        ArgumentNullException.ThrowIfNull(inputs);
        await Task.Yield(); // the caller goes on with its next step at once
        await using var content = File.OpenRead(blob);
        var uploaded = await CallAsync(
            c => c.UploadAsync(ns, content, layer.Digest, layer.Size, layer.MediaType, cancellationToken: cancellationToken),
            "upload a layer", cancellationToken);
        if (uploaded is null)
        {
            return;
        }

        var request = new Wire.CommitRequest
        {
            Namespace = ns,
            Key = key.Value,
            Layer = new Wire.LayerDescriptor { Digest = layer.Digest.Value, DiffId = layer.DiffId.Value, Size = layer.Size, MediaType = layer.MediaType },
            ParentState = inputs.ParentState.Value,
            Platform = inputs.Platform,
            Step = new Wire.StepInput { Instruction = inputs.Instruction, SourcesDigest = inputs.SourcesDigest?.Value ?? string.Empty },
        };
        request.Step.Args.AddRange(inputs.Args.Select(a => new Wire.BuildArg { Name = a.Key, Value = a.Value }));
        await CallAsync(c => c.CommitAsync(request, cancellationToken), "commit a layer", cancellationToken);
    }

    // One call; its failure is a warning and a null. An unreachable server is given up on.
    private async Task<T?> CallAsync<T>(Func<CacheServiceClient, Task<T>> call, string what, CancellationToken cancellationToken)
        where T : class
    {
        if (_client is not { } client)
        {
            return null;
        }

        try
        {
            return await call(client);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Cancelled && !cancellationToken.IsCancellationRequested)
        {
            _client = null;
            progress.Warning($"the cache could not {what} ({e.StatusCode}: {e.Status.Detail}); building the rest without it");
            return null;
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            progress.Warning($"the cache could not {what} ({e.StatusCode}: {e.Status.Detail})");
            return null;
        }
    }

    private sealed class Progress(IBuildProgress progress, string verb, long total) : IProgress<long>
    {
        public void Report(long value) => progress.Transfer(verb, value, total);
    }
}
