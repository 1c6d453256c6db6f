using System.Runtime.CompilerServices;
using CacheService.Core;
using CacheService.Core.Blobs;

namespace CacheService.Blobs.FileSystem;

/// <summary>
/// <see cref="IBlobStore"/> in a local directory: <c>&lt;root&gt;/&lt;namespace&gt;/blobs/sha256/&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// A put streams into <c>&lt;root&gt;/.uploads/</c> (same file system, so the final rename is atomic),
/// verifying as it writes, flushes to disk, and only then renames into place. Namespace segments
/// start with a letter or digit, so no namespace can reach <c>.uploads</c> or climb out of the root.
/// </remarks>
public sealed class FileSystemBlobStore : IBlobStore
{
    private readonly string _root;
    private readonly string _uploads;

    /// <summary>Uses <paramref name="root"/>, creating it; removes uploads a crash left behind.</summary>
    public FileSystemBlobStore(string root)
    {
        _root = Path.GetFullPath(root);
        _uploads = Path.Combine(_root, ".uploads");
        if (Directory.Exists(_uploads))
        {
            Directory.Delete(_uploads, recursive: true);
        }

        Directory.CreateDirectory(_uploads);
    }

    /// <inheritdoc />
    public Task<long?> GetSizeAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var file = new FileInfo(PathOf(ns, digest));
        return Task.FromResult(file.Exists ? file.Length : (long?)null);
    }

    /// <inheritdoc />
    public async Task<bool> PutAsync(string ns, Digest digest, long size, Stream content, CancellationToken cancellationToken)
    {
        var final = PathOf(ns, digest);
        if (File.Exists(final))
        {
            return false;
        }

        var staging = Path.Combine(_uploads, Guid.NewGuid().ToString("N"));
        try
        {
            await using (var file = new FileStream(staging, FileMode.CreateNew, FileAccess.Write, FileShare.None, 0, FileOptions.Asynchronous))
            {
                await using var verified = new VerifyingReadStream(content, digest, size);
                await verified.CopyToAsync(file, VerifyingReadStream.BufferSize, cancellationToken);
                file.Flush(flushToDisk: true);
            }

            Directory.CreateDirectory(Path.GetDirectoryName(final)!);
            try
            {
                File.Move(staging, final, overwrite: false);
                return true;
            }
            catch (IOException) when (File.Exists(final))
            {
                // Another upload of the same digest won the race; its bytes are the same.
                return false;
            }
        }
        finally
        {
            File.Delete(staging);
        }
    }

    /// <inheritdoc />
    public Task<Stream> OpenReadAsync(string ns, Digest digest, long offset, CancellationToken cancellationToken)
    {
        try
        {
            var stream = new FileStream(PathOf(ns, digest), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 0, FileOptions.Asynchronous | FileOptions.SequentialScan);
            stream.Seek(offset, SeekOrigin.Begin);
            return Task.FromResult<Stream>(stream);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new BlobNotFoundException(ns, digest);
        }
    }

    /// <inheritdoc />
    public Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken)
    {
        var path = PathOf(ns, digest);
        if (!File.Exists(path))
        {
            return Task.FromResult(false);
        }

        File.Delete(path);
        return Task.FromResult(true);
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<StoredBlob> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var root = new DirectoryInfo(_root);
        foreach (var file in root.EnumerateFiles("*", SearchOption.AllDirectories))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var relative = Path.GetRelativePath(_root, file.FullName).Replace(Path.DirectorySeparatorChar, '/');
            var marker = relative.LastIndexOf("/blobs/sha256/", StringComparison.Ordinal);
            if (marker <= 0 || !Digest.TryParse(Digest.Prefix + file.Name, out var digest))
            {
                continue; // staging files and anything else that is not a blob
            }

            yield return new StoredBlob(relative[..marker], digest, file.Length, file.LastWriteTimeUtc);
        }

        await Task.CompletedTask;
    }

    // The namespace becomes a path: check it here too, whatever the caller already did.
    private string PathOf(string ns, Digest digest) =>
        Path.Combine(_root, NamespaceName.Validate(ns, "namespace"), "blobs", "sha256", digest.Hex);
}
