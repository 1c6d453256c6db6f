using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CacheService.Core.Keys;

/// <summary>
/// The byte encoding every key-like digest uses (docs/cache-key.md): each field is a 4-byte
/// big-endian length and its UTF-8 bytes, counts are 4-byte big-endian, so no choice of
/// separator can make two different inputs collide.
/// </summary>
public sealed class Preimage
{
    // Strings that are not valid Unicode (lone surrogates) are refused rather than silently
    // replaced, which could make two different inputs encode alike.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ArrayBufferWriter<byte> _buffer = new();

    /// <summary>Orders strings by their UTF-8 bytes, the order the encoding sorts names in.</summary>
    public static IComparer<string> Utf8Order { get; } = Comparer<string>.Create((x, y) => StrictUtf8.GetBytes(x).AsSpan().SequenceCompareTo(StrictUtf8.GetBytes(y)));

    /// <summary>Appends a length-prefixed UTF-8 field.</summary>
    public Preimage Field(string value)
    {
        var bytes = StrictUtf8.GetBytes(value);
        Count(bytes.Length);
        _buffer.Write(bytes);
        return this;
    }

    /// <summary>Appends a 4-byte big-endian count.</summary>
    public Preimage Count(int count)
    {
        BinaryPrimitives.WriteUInt32BigEndian(_buffer.GetSpan(4), checked((uint)count));
        _buffer.Advance(4);
        return this;
    }

    /// <summary>The bytes written so far.</summary>
    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>The SHA-256 digest of the bytes written so far.</summary>
    public Digest Hash() => Digest.FromHash(SHA256.HashData(_buffer.WrittenSpan));
}
