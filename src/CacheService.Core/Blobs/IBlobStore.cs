namespace CacheService.Core.Blobs;

/// <summary>
/// Content-addressed blob storage, per namespace (<c>&lt;namespace&gt;/blobs/sha256/&lt;hex&gt;</c>).
/// </summary>
/// <remarks>
/// <para>Visibility: <see cref="PutAsync"/> verifies digest and size while the bytes stream in and
/// publishes the blob under its final name only when both match. A reader never sees a partial
/// or unverified blob; a failed or cancelled put leaves nothing behind.</para>
/// <para>Memory: stores stream; none buffers a whole blob, whatever its size.</para>
/// <para>Integrity on read: stored bytes may rot; readers verify (see the server's download path).</para>
/// </remarks>
public interface IBlobStore
{
    /// <summary>The size of a stored blob, or null when it is not stored.</summary>
    Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken);

    /// <summary>
    /// Stores <paramref name="content"/> as <paramref name="digest"/>. Returns false without reading
    /// the stream when the blob is already stored. Throws <see cref="InvalidFieldException"/> on a
    /// digest or size mismatch (nothing is stored).
    /// </summary>
    Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken);

    /// <summary>Opens the blob for reading from <paramref name="offset"/>. Throws <see cref="BlobNotFoundException"/>.</summary>
    Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken);

    /// <summary>Deletes the blob; false when it was not stored.</summary>
    Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken);

    /// <summary>Every stored blob of every namespace, in no particular order (for the orphan sweeper).</summary>
    IAsyncEnumerable<StoredBlob> ListAsync(CancellationToken cancellationToken);
}

/// <summary>A blob as the store lists it.</summary>
public readonly record struct StoredBlob(string Namespace, Digest Digest, long Size, DateTimeOffset LastModified);
