namespace CacheService.Core.Blobs;

/// <summary>
/// Upload sessions whose bytes and state live in the blob store, so that each request of one
/// session (the registry's POST, PATCH..., PUT) may reach a different replica. A session is a
/// marker and numbered parts in a staging area no key can point at; the server reads the parts
/// back in order and verifies the whole against its digest before storing it as a blob.
/// </summary>
public interface IStagedUploads
{
    /// <summary>Opens session <paramref name="session"/> for <paramref name="ns"/>, or marks it active again.</summary>
    Task TouchSessionAsync(string ns, string session, CancellationToken cancellationToken);

    /// <summary>The sizes of the session's parts, in order; null when there is no such session.</summary>
    Task<IReadOnlyList<long>?> PartsAsync(string ns, string session, CancellationToken cancellationToken);

    /// <summary>Stores part <paramref name="part"/> (numbered from 0) of <paramref name="size"/> bytes.</summary>
    Task PutPartAsync(string ns, string session, int part, long size, Stream content, CancellationToken cancellationToken);

    /// <summary>Reads part <paramref name="part"/>.</summary>
    Task<Stream> OpenPartAsync(string ns, string session, int part, CancellationToken cancellationToken);

    /// <summary>Deletes the session and its parts.</summary>
    Task DeleteSessionAsync(string ns, string session, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes what sessions (and staged direct uploads) left behind untouched since
    /// <paramref name="olderThan"/>. Returns how many objects went.
    /// </summary>
    Task<int> SweepStagedUploadsAsync(DateTimeOffset olderThan, CancellationToken cancellationToken);
}
