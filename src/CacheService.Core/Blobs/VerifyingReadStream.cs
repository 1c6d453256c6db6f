using System.Security.Cryptography;

namespace CacheService.Core.Blobs;

/// <summary>
/// Reads a blob's bytes through, hashing them, and holds back the last read until the whole
/// content is known to have exactly the declared size and digest. Whatever consumes it (a file,
/// an HTTP PUT to an object store) therefore never receives a complete body that is wrong: a
/// mismatch throws instead of delivering the final bytes, so the upload is abandoned before the
/// blob can become visible. Stores use it so that verification is written once.
/// </summary>
/// <remarks>
/// An empty blob is checked when the stream is made: a consumer may never read a body of length
/// zero (an HTTP PUT with <c>Content-Length: 0</c>), and a check at the end of the last read would
/// then never run, publishing nothing-at-all under any digest.
/// </remarks>
public sealed class VerifyingReadStream : ReadOnlyStream
{
    /// <summary>Buffer size stores copy with, in bytes.</summary>
    public const int BufferSize = 128 * 1024;

    private static readonly Digest EmptyBlob = Digest.Of([]);

    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly Stream _source;
    private readonly Digest _digest;
    private readonly long _size;
    private long _total;

    /// <summary>Verifies <paramref name="source"/> against <paramref name="digest"/> and <paramref name="size"/>.</summary>
    /// <exception cref="InvalidFieldException">At once, for a negative size, or a size of zero with any digest but the empty blob's.</exception>
    public VerifyingReadStream(Stream source, Digest digest, long size)
    {
        if (size < 0)
        {
            throw new InvalidFieldException("size", "must not be negative");
        }

        if (size == 0 && digest != EmptyBlob)
        {
            throw new InvalidFieldException("digest", $"an empty blob has the digest {EmptyBlob}, not {digest}");
        }

        _source = source;
        _digest = digest;
        _size = size;
    }

    public override long Length => _size;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_total == _size)
        {
            return 0; // verified at the end of the previous read
        }

        var wanted = (int)Math.Min(buffer.Length, _size - _total);
        var read = await _source.ReadAsync(buffer[..wanted], cancellationToken);
        if (read == 0)
        {
            throw new InvalidFieldException("size", $"the content has {_total} bytes, not the declared {_size}");
        }

        _hash.AppendData(buffer.Span[..read]);
        _total += read;
        if (_total == _size)
        {
            await VerifyEndAsync(cancellationToken);
        }

        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }

    private async Task VerifyEndAsync(CancellationToken cancellationToken)
    {
        var probe = new byte[1];
        if (await _source.ReadAsync(probe, cancellationToken) > 0)
        {
            throw new InvalidFieldException("size", $"the content is longer than the declared {_size} bytes");
        }

        if (Digest.FromHash(_hash.GetHashAndReset()) != _digest)
        {
            throw new InvalidFieldException("digest", "the content does not hash to the declared digest");
        }
    }
}
