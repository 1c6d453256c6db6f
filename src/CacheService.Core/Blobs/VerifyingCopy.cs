using System.Buffers;
using System.Security.Cryptography;

namespace CacheService.Core.Blobs;

/// <summary>
/// Copies a blob's bytes while hashing them, in fixed-size buffers, and checks digest and size
/// at the end. Stores use it so that verification is written once.
/// </summary>
public static class VerifyingCopy
{
    /// <summary>Buffer size of one copy step, in bytes.</summary>
    public const int BufferSize = 128 * 1024;

    /// <summary>
    /// Copies exactly <paramref name="size"/> bytes from <paramref name="source"/> to
    /// <paramref name="destination"/>; throws <see cref="InvalidFieldException"/> when the stream is
    /// shorter or longer than <paramref name="size"/> or its bytes do not hash to <paramref name="digest"/>.
    /// </summary>
    public static async Task CopyAsync(Stream source, Stream destination, Digest digest, long size, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            long total = 0;
            int read;
            while ((read = await source.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken)) > 0)
            {
                total += read;
                if (total > size)
                {
                    throw new InvalidFieldException("size", $"the content is longer than the declared {size} bytes");
                }

                hash.AppendData(buffer, 0, read);
                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }

            if (total != size)
            {
                throw new InvalidFieldException("size", $"the content has {total} bytes, not the declared {size}");
            }

            if (Digest.FromHash(hash.GetHashAndReset()) != digest)
            {
                throw new InvalidFieldException("digest", "the content does not hash to the declared digest");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
