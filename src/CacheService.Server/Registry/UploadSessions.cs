using System.Collections.Concurrent;
using CacheService.Core;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Registry;

/// <summary>
/// Blob uploads in progress over the registry API (POST, then PATCH chunks, then PUT). The bytes
/// wait in a file under the data directory until the PUT names their digest; only then are they
/// verified and stored, exactly as a gRPC upload. Sessions live on the replica that opened them:
/// behind a load balancer, chunked uploads need session affinity (monolithic ones do not).
/// </summary>
internal sealed class UploadSessions
{
    private readonly string _directory;
    private readonly ConcurrentDictionary<string, string> _namespaces = new(StringComparer.Ordinal);

    public UploadSessions(IOptions<StorageOptions> storage)
    {
        _directory = Path.Combine(Path.GetFullPath(storage.Value.DataDirectory), "registry-uploads");
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true); // sessions do not outlive the process
        }

        Directory.CreateDirectory(_directory);
    }

    public string Start(string ns)
    {
        var id = Guid.NewGuid().ToString("N");
        File.Create(PathOf(id)).Dispose();
        _namespaces[id] = ns;
        return id;
    }

    /// <summary>The bytes received so far, or null for an unknown session (or one of another repository).</summary>
    public long? Size(string ns, string id) =>
        _namespaces.TryGetValue(id, out var owner) && owner == ns ? new FileInfo(PathOf(id)).Length : null;

    /// <summary>Appends <paramref name="body"/>; returns the new size.</summary>
    public async Task<long> AppendAsync(string id, Stream body, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(PathOf(id), FileMode.Append, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        await body.CopyToAsync(file, 1 << 16, cancellationToken);
        return file.Length;
    }

    /// <summary>Opens the received bytes for the final, verified store.</summary>
    public Stream Open(string id) => new FileStream(PathOf(id), FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);

    public void End(string id)
    {
        _namespaces.TryRemove(id, out _);
        File.Delete(PathOf(id));
    }

    private string PathOf(string id) =>
        id.Length == 32 && id.All(char.IsAsciiHexDigitLower) ? Path.Combine(_directory, id) : throw new InvalidFieldException("upload", "unknown upload id");
}
