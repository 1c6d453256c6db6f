namespace CacheService.Core.Index;

/// <summary>
/// Delegates every call to an inner index, through one overridable hook, so that a wrapper that
/// adds cross-cutting behaviour (observation, fault injection in tests) is a few lines: override
/// <see cref="CallAsync{T}"/>, or a single method.
/// </summary>
public abstract class LayerIndexDecorator(ILayerIndex inner) : ILayerIndex
{
    /// <summary>The wrapped index.</summary>
    protected ILayerIndex Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <inheritdoc />
    public virtual Task<IndexEntry?> LookupAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        CallAsync(i => i.LookupAsync(ns, key, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IndexEntry?> LookupAndCountAsync(string ns, Digest key, CancellationToken cancellationToken) =>
        CallAsync(i => i.LookupAndCountAsync(ns, key, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken) =>
        CallAsync(i => i.CommitAsync(ns, entry, budget, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<CommitOutcome> PutTagAsync(string ns, string tag, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken) =>
        CallAsync(i => i.PutTagAsync(ns, tag, entry, budget, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<TagEntry>> ListTagsAsync(string ns, string? after, int limit, CancellationToken cancellationToken) =>
        CallAsync(i => i.ListTagsAsync(ns, after, limit, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<ChainHit>> WalkAsync(
        IReadOnlyList<string> namespaces, Digest first, Func<IndexEntry, string, Digest?> nextKey, CancellationToken cancellationToken) =>
        CallAsync(i => i.WalkAsync(namespaces, first, nextKey, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<long> DeleteAsync(string ns, IReadOnlyCollection<Digest> keys, CancellationToken cancellationToken) =>
        CallAsync(i => i.DeleteAsync(ns, keys, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<long> DeleteAllAsync(string ns, CancellationToken cancellationToken) =>
        CallAsync(i => i.DeleteAllAsync(ns, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<long> RemoveEntriesReferencingAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        CallAsync(i => i.RemoveEntriesReferencingAsync(ns, blob, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task RecordUsageAsync(string ns, UsageDelta delta, CancellationToken cancellationToken) =>
        CallAsync(async i =>
        {
            await i.RecordUsageAsync(ns, delta, cancellationToken);
            return true;
        }, cancellationToken);

    /// <inheritdoc />
    public virtual Task<NamespaceUsage> GetUsageAsync(string ns, CancellationToken cancellationToken) =>
        CallAsync(i => i.GetUsageAsync(ns, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<IndexEntry>> ListEntriesAsync(string ns, CancellationToken cancellationToken) =>
        CallAsync(i => i.ListEntriesAsync(ns, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<string>> ListNamespacesAsync(CancellationToken cancellationToken) =>
        CallAsync(i => i.ListNamespacesAsync(cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<CollectableBlob>> TakeCollectableBlobsAsync(DateTimeOffset unreferencedSince, int max, CancellationToken cancellationToken) =>
        CallAsync(i => i.TakeCollectableBlobsAsync(unreferencedSince, max, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<bool> IsBlobInUseAsync(string ns, Digest blob, CancellationToken cancellationToken) =>
        CallAsync(i => i.IsBlobInUseAsync(ns, blob, cancellationToken), cancellationToken);

    /// <inheritdoc />
    public virtual Task<IReadOnlyList<string>> VerifyAsync(string ns, CancellationToken cancellationToken) =>
        CallAsync(i => i.VerifyAsync(ns, cancellationToken), cancellationToken);

    /// <summary>Every call passes through here; the default just makes it.</summary>
    protected virtual Task<T> CallAsync<T>(Func<ILayerIndex, Task<T>> operation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return operation(Inner);
    }
}
