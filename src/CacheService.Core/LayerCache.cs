using System.Buffers;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Core.Keys;
using CacheService.Core.Options;

namespace CacheService.Core;

/// <summary>
/// What the cache does, independent of any transport: lookups with fallback namespaces, chain
/// resolution, commits, verified uploads and downloads. The gRPC service is a thin layer over it.
/// </summary>
/// <remarks>
/// A cache must never break a build: when the index cannot answer a read in time, reads answer a
/// miss marked degraded; writes fail with <see cref="BackendUnavailableException"/>.
/// </remarks>
public sealed class LayerCache(ILayerIndex index, IBlobStore blobs, LimitsOptions limits, EvictionOptions eviction, IDirectTransfer? direct = null)
{
    /// <summary>Looks <paramref name="key"/> up in each namespace in order; the first hit wins.</summary>
    public async Task<LookupResult> LookupAsync(IReadOnlyList<string> namespaces, Digest key, CancellationToken cancellationToken)
    {
        return await LookupInAsync(namespaces, key, cancellationToken);
    }

    /// <summary>
    /// Walks <paramref name="steps"/> from <paramref name="baseState"/>: config-only steps move the
    /// state by their key, layer steps by the diff id of their cached layer, and the walk stops at
    /// the first layer step that misses. Steps after it are pending: their keys depend on the layer
    /// the rebuild will produce.
    /// </summary>
    public async Task<ChainResult> ResolveChainAsync(
        IReadOnlyList<string> namespaces, Digest baseState, string platform, IReadOnlyList<StepSpec> steps, CancellationToken cancellationToken)
    {
        var resolved = new List<ResolvedStep>(steps.Count);
        var state = baseState;
        var next = 0;

        // Config-only steps move the state by their key; returns the next layer step, or null.
        StepKey? AdvanceToLayerStep()
        {
            for (; next < steps.Count; next++)
            {
                var step = ComputeKey(state, platform, steps[next], $"steps[{next}]");
                if (step.IsLayerStep)
                {
                    return step;
                }

                state = CacheKeyV1.NextState(state, step, null);
                resolved.Add(new ResolvedStep(StepOutcome.Config, step.Key, null, null, state, null));
            }

            return null;
        }

        var current = AdvanceToLayerStep();
        if (current is null)
        {
            return new ChainResult(resolved, Degraded: false);
        }

        // One walk through the index: each hit's diff id gives the next layer step's key, so the
        // engine can resolve the whole chain in one transaction instead of one call per step.
        var degraded = false;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(limits.LookupTimeout);
            try
            {
                await index.WalkAsync(namespaces, current.Key, (entry, ns) =>
                {
                    state = CacheKeyV1.NextState(state, current, entry.Layer.DiffId);
                    resolved.Add(new ResolvedStep(StepOutcome.Hit, current.Key, entry.Layer, ns, state, entry.Created));
                    next++;
                    current = AdvanceToLayerStep();
                    return current?.Key;
                }, timeout.Token);
            }
            catch (Exception e) when (e is BackendUnavailableException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                degraded = true;
            }
        }

        if (current is not null)
        {
            resolved.Add(new ResolvedStep(StepOutcome.Miss, current.Key, null, null, null, null));
            for (var j = next + 1; j < steps.Count; j++)
            {
                resolved.Add(new ResolvedStep(StepOutcome.Pending, null, null, null, null, null));
            }
        }

        return new ChainResult(resolved, degraded);
    }

    /// <summary>Derives one step's key, enforcing the request limits.</summary>
    public StepKey ComputeKey(Digest parentState, string platform, StepSpec step, string field)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.Instruction.Length > limits.MaxInstructionLength)
        {
            throw new InvalidFieldException($"{field}.instruction", $"is longer than {limits.MaxInstructionLength} characters");
        }

        if (step.Args.Count > limits.MaxArgsPerStep)
        {
            throw new InvalidFieldException($"{field}.args", $"has more than {limits.MaxArgsPerStep} entries");
        }

        try
        {
            return CacheKeyV1.Compute(new StepKeyInput(parentState, platform, step.Instruction, step.Args, step.SourcesDigest));
        }
        catch (InvalidFieldException e) when (e.Field != "platform")
        {
            throw e.Within(field);
        }
    }

    /// <summary>
    /// Records key -> layer. The layer's blob must be stored with the stated size. When
    /// <paramref name="inputs"/> are given they must derive <paramref name="key"/>; they are kept so a
    /// later miss can be explained.
    /// </summary>
    public async Task<CommitOutcome> CommitAsync(string ns, Digest key, LayerDescriptor layer, KeyInputs? inputs, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var preimage = string.Empty;
        if (inputs is not null)
        {
            var derived = ComputeKey(inputs.ParentState, inputs.Platform, inputs.Step, "step");
            if (derived.Key != key)
            {
                throw new InvalidFieldException("key", "does not match the key derived from parent_state, platform and step");
            }

            preimage = DescribePreimage(inputs, derived);
        }

        var stored = await blobs.GetSizeAsync(ns, layer.Digest, cancellationToken);
        if (stored is null)
        {
            throw new PreconditionFailedException($"layer {layer.Digest} is not stored in namespace {ns}; upload it first");
        }

        if (stored != layer.Size)
        {
            throw new PreconditionFailedException($"layer {layer.Digest} is stored with {stored} bytes, not {layer.Size}");
        }

        return await index.CommitAsync(ns, NewEntry.ForLayer(key, layer, preimage), eviction.BudgetFor(ns), cancellationToken);
    }

    /// <summary>Stores a blob, verified; returns false when it was already stored (the stream is not read).</summary>
    public async Task<bool> UploadAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken)
    {
        if (size < 0 || size > limits.MaxLayerBytes)
        {
            throw new InvalidFieldException("header.size", $"must be between 0 and {limits.MaxLayerBytes} bytes");
        }

        if (await blobs.GetSizeAsync(ns, digest, cancellationToken) is not null)
        {
            return false;
        }

        await blobs.PutAsync(ns, digest, size, content, cancellationToken);
        await RecordUsageAsync(ns, new UsageDelta(BytesUploaded: size), cancellationToken);
        return true;
    }

    // Bytes per download chunk: well under gRPC's default 4 MiB message limit of clients.
    private const int DownloadChunkBytes = 512 * 1024;

    /// <summary>
    /// Streams a blob from <paramref name="offset"/>, hashing it whole (the bytes before the offset
    /// are read but not returned). A missing blob throws <see cref="BlobNotFoundException"/>; bytes
    /// that do not hash to the digest throw <see cref="BlobCorruptedException"/> after the last
    /// chunk. Either way the entries that point at the blob are removed, so builders rebuild it.
    /// Each yielded chunk is valid only until the next one is requested.
    /// </summary>
    public async IAsyncEnumerable<ReadOnlyMemory<byte>> DownloadAsync(
        string ns, Digest digest, long offset, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (offset < 0)
        {
            throw new InvalidFieldException("offset", "must not be negative");
        }

        Stream stream;
        try
        {
            stream = await blobs.OpenReadAsync(ns, digest, 0, cancellationToken);
        }
        catch (BlobNotFoundException)
        {
            await index.RemoveEntriesReferencingAsync(ns, digest, cancellationToken);
            throw;
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(DownloadChunkBytes);
        long position = 0;
        long sent = 0;
        try
        {
            await using (stream)
            {
                int read;
                // Full chunks: a store's stream returns what one socket read brought (often a few
                // KiB), and every chunk sent is a gRPC message with its own framing and flush.
                while ((read = await stream.ReadAtLeastAsync(buffer.AsMemory(0, DownloadChunkBytes), DownloadChunkBytes, throwOnEndOfStream: false, cancellationToken)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    var skip = (int)Math.Clamp(offset - position, 0, read);
                    position += read;
                    if (skip < read)
                    {
                        sent += read - skip;
                        yield return buffer.AsMemory(skip, read - skip);
                    }
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        if (offset > position)
        {
            throw new InvalidFieldException("offset", $"is beyond the end of the blob ({position} bytes)");
        }

        if (Digest.FromHash(hash.GetHashAndReset()) != digest)
        {
            await index.RemoveEntriesReferencingAsync(ns, digest, cancellationToken);
            await blobs.DeleteAsync(ns, digest, cancellationToken);
            throw new BlobCorruptedException(ns, digest);
        }

        await RecordUsageAsync(ns, new UsageDelta(BytesDownloaded: sent), cancellationToken);
    }

    /// <summary>A URL that downloads a stored blob straight from the object store.</summary>
    public async Task<PresignedUrl> PresignDownloadAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var transfer = DirectTransfer();
        if (await blobs.GetSizeAsync(ns, digest, cancellationToken) is null)
        {
            throw new BlobNotFoundException(ns, digest);
        }

        return await transfer.PresignDownloadAsync(ns, digest, cancellationToken);
    }

    /// <summary>A URL that uploads a blob straight to the object store, or null when it is already stored.</summary>
    public async Task<PresignedUrl?> PresignUploadAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var transfer = DirectTransfer();
        return await blobs.GetSizeAsync(ns, digest, cancellationToken) is null
            ? await transfer.PresignUploadAsync(ns, cancellationToken)
            : null;
    }

    /// <summary>Verifies and publishes a direct upload; false when the blob was already stored.</summary>
    public async Task<bool> CompleteDirectUploadAsync(string ns, string uploadId, Digest digest, long size, CancellationToken cancellationToken)
    {
        if (size < 0 || size > limits.MaxLayerBytes)
        {
            throw new InvalidFieldException("size", $"must be between 0 and {limits.MaxLayerBytes} bytes");
        }

        var published = await DirectTransfer().PromoteUploadAsync(ns, uploadId, digest, size, cancellationToken);
        if (published)
        {
            await RecordUsageAsync(ns, new UsageDelta(BytesUploaded: size), cancellationToken);
        }

        return published;
    }

    private IDirectTransfer DirectTransfer() =>
        direct ?? throw new PreconditionFailedException("direct transfer is not enabled on this server (CacheService:S3:DirectTransfer)");

    /// <summary>Sizes of the stored blobs among <paramref name="digests"/>; absent ones are left out.</summary>
    public async Task<IReadOnlyList<BlobRef>> StatAsync(string ns, IReadOnlyList<Digest> digests, CancellationToken cancellationToken)
    {
        var present = new List<BlobRef>();
        foreach (var digest in digests)
        {
            if (await blobs.GetSizeAsync(ns, digest, cancellationToken) is { } size)
            {
                present.Add(new BlobRef(digest, size));
            }
        }

        return present;
    }

    /// <summary>The counters of one namespace.</summary>
    public Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken) =>
        index.GetUsageAsync(ns, cancellationToken);

    /// <summary>Drops the given keys, or every key when <paramref name="keys"/> is null.</summary>
    public Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest>? keys, CancellationToken cancellationToken) =>
        keys is null ? index.DeleteAllAsync(ns, cancellationToken) : index.DeleteAsync(ns, keys, cancellationToken);

    /// <summary>The index's invariant checks for a namespace, plus its budget; empty when consistent.</summary>
    public async Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken)
    {
        var problems = (await index.VerifyAsync(ns, cancellationToken)).ToList();
        var usage = await index.GetUsageAsync(ns, cancellationToken);
        var budget = eviction.BudgetFor(ns);
        if (usage.StoredBytes > budget.HighWatermarkBytes)
        {
            problems.Add($"stored bytes {usage.StoredBytes} exceed the budget of {budget.HighWatermarkBytes}");
        }

        return problems;
    }

    // Reads each namespace in order. A slow or unreachable index makes a degraded miss, never an
    // error: the builder then simply rebuilds. The caller's own cancellation still propagates.
    // The lookup counts in the stats of the namespace asked (the first), in the same index call
    // as its read; a hit in a fallback namespace adds the hit with one more call.
    private async Task<LookupResult> LookupInAsync(IReadOnlyList<string> namespaces, Digest key, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limits.LookupTimeout);
        try
        {
            var entry = await index.LookupAndCountAsync(namespaces[0], key, timeout.Token);
            if (entry is not null)
            {
                return new LookupResult(entry, namespaces[0], Degraded: false);
            }

            foreach (var ns in namespaces.Skip(1))
            {
                entry = await index.LookupAsync(ns, key, timeout.Token);
                if (entry is not null)
                {
                    await RecordUsageAsync(namespaces[0], new UsageDelta(Hits: 1), cancellationToken);
                    return new LookupResult(entry, ns, Degraded: false);
                }
            }

            return new LookupResult(null, null, Degraded: false);
        }
        catch (Exception e) when (e is BackendUnavailableException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return new LookupResult(null, null, Degraded: true);
        }
    }

    // Stats are best effort: losing a counter increment must not fail the request it counts.
    private async Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken)
    {
        try
        {
            await index.RecordUsageAsync(ns, delta, cancellationToken);
        }
        catch (BackendUnavailableException)
        {
        }
    }

    private static string DescribePreimage(KeyInputs inputs, StepKey derived) =>
        JsonSerializer.Serialize(new
        {
            version = CacheKeyV1.KeyDomain,
            parentState = inputs.ParentState.Value,
            platform = CacheKeyV1.NormalizePlatform(inputs.Platform),
            instruction = derived.NormalizedInstruction,
            args = inputs.Step.Args.ToDictionary(a => a.Key, a => a.Value, StringComparer.Ordinal),
            sourcesDigest = inputs.Step.SourcesDigest?.Value,
        });
}

/// <summary>One step as a client describes it.</summary>
public sealed record StepSpec(string Instruction, IReadOnlyList<KeyValuePair<string, string>> Args, Digest? SourcesDigest);

/// <summary>The inputs a committed key was derived from.</summary>
public sealed record KeyInputs(Digest ParentState, string Platform, StepSpec Step);

/// <summary>The answer to a lookup.</summary>
/// <param name="Entry">The entry found, or null on a miss.</param>
/// <param name="Namespace">The namespace that answered the hit.</param>
/// <param name="Degraded">True when the index could not be asked and the miss is assumed.</param>
public sealed record LookupResult(IndexEntry? Entry, string? Namespace, bool Degraded);

/// <summary>What <see cref="LayerCache.ResolveChainAsync"/> found for one step.</summary>
public enum StepOutcome
{
    /// <summary>A cached layer step.</summary>
    Hit,

    /// <summary>A layer step that is not cached: rebuild from here.</summary>
    Miss,

    /// <summary>A config-only step: nothing to fetch.</summary>
    Config,

    /// <summary>After a miss: the key depends on the layer the rebuild produces.</summary>
    Pending,
}

/// <summary>One step of a resolved chain.</summary>
/// <param name="Outcome">What the step needs.</param>
/// <param name="Key">Its key; null when pending.</param>
/// <param name="Layer">The cached layer of a hit.</param>
/// <param name="Namespace">The namespace that answered a hit.</param>
/// <param name="StateAfter">The state after the step; null from the first miss on.</param>
/// <param name="Created">When the entry of a hit was committed.</param>
public sealed record ResolvedStep(StepOutcome Outcome, Digest? Key, LayerDescriptor? Layer, string? Namespace, Digest? StateAfter, DateTimeOffset? Created);

/// <summary>A resolved chain.</summary>
public sealed record ChainResult(IReadOnlyList<ResolvedStep> Steps, bool Degraded)
{
    /// <summary>Leading steps that need no rebuild.</summary>
    public int CachedSteps => Steps.TakeWhile(s => s.Outcome is StepOutcome.Hit or StepOutcome.Config).Count();
}
