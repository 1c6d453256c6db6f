namespace CacheService.Core.Blobs;

/// <summary>
/// Delegates every call to an inner blob store, so a wrapper (resilience, observation) overrides
/// only what it changes: <see cref="CallAsync{T}"/> for every single-result call, or one method.
/// </summary>
public abstract class BlobStoreDecorator(IBlobStore inner) : IBlobStore
{
    /// <summary>The wrapped store.</summary>
    protected IBlobStore Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <inheritdoc />
    public virtual Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        CallAsync(ct => Inner.GetSizeAsync(ns, digest, ct), cancellationToken);

    /// <inheritdoc />
    public virtual Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken) =>
        CallAsync(ct => Inner.PutAsync(ns, digest, size, content, ct), cancellationToken);

    /// <inheritdoc />
    public virtual Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken) =>
        CallAsync(ct => Inner.OpenReadAsync(ns, digest, offset, ct), cancellationToken);

    /// <inheritdoc />
    public virtual Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken) =>
        CallAsync(ct => Inner.DeleteAsync(ns, digest, ct), cancellationToken);

    /// <inheritdoc />
    public virtual IAsyncEnumerable<StoredBlob> ListAsync(CancellationToken cancellationToken) => Inner.ListAsync(cancellationToken);

    /// <summary>Every single-result call passes through here; the default just makes it.</summary>
    protected virtual Task<T> CallAsync<T>(Func<CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(operation);
        return operation(cancellationToken);
    }
}
