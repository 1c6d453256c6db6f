using System.Runtime.CompilerServices;
using CacheService.Core;
using CacheService.Core.Blobs;

namespace CacheService.Blobs.FileSystem;

/// <summary>
/// <see cref="IBlobStore"/> in a local directory: <c>&lt;root&gt;/&lt;namespace&gt;/blobs/sha256/&lt;hex&gt;</c>.
/// </summary>
/// <remarks>
/// A put streams into <c>&lt;root&gt;/.uploads/</c> (same file system, so the final rename is atomic),
/// verifying as it writes, flushes to disk, and only then renames into place; then it flushes the
/// directory that holds the new name (and any directory it had to create), so an acknowledged
/// blob survives a power cut, not just a process crash. Namespace segments
/// start with a letter or digit, so no namespace can reach <c>.uploads</c> or climb out of the root.
/// </remarks>
public sealed class FileSystemBlobStore : IBlobStore
{
    private readonly string _root;
    private readonly string _uploads;
    private readonly Action<string> _flushDirectory;

    /// <summary>Uses <paramref name="root"/>, creating it; removes uploads a crash left behind.</summary>
    /// <param name="root">The store's directory.</param>
    /// <param name="flushDirectory">Makes a directory's entries durable; <see cref="DirectorySync.Flush"/> unless a test watches it.</param>
    public FileSystemBlobStore(string root, Action<string>? flushDirectory = null)
    {
        _flushDirectory = flushDirectory ?? DirectorySync.Flush;
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

            var directory = Path.GetDirectoryName(final)!;
            var created = CreateDirectories(directory);
            try
            {
                File.Move(staging, final, overwrite: false);
            }
            catch (IOException) when (File.Exists(final))
            {
                // Another upload of the same digest won the race; its bytes are the same.
                return false;
            }

            _flushDirectory(directory);
            foreach (var parent in created)
            {
                _flushDirectory(Path.GetDirectoryName(parent)!); // a new directory's own name lives in its parent
            }

            return true;
        }
        finally
        {
            File.Delete(staging);
        }
    }

    // Creates the directory and the missing ones above it; returns those it created, deepest first.
    private List<string> CreateDirectories(string directory)
    {
        var missing = new List<string>();
        for (var d = directory; d.Length > _root.Length && !Directory.Exists(d); d = Path.GetDirectoryName(d)!)
        {
            missing.Add(d);
        }

        Directory.CreateDirectory(directory);
        return missing;
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
