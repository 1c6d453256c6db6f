using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CacheService.Core.Index;

/// <summary>
/// The server's secret keys for index entries: each entry carries an HMAC-SHA256, made with
/// <see cref="Current"/>, over what a hit hands a builder (namespace, key, layer descriptor and
/// the blobs it keeps alive). Whoever can write the index store but does not hold the key cannot
/// make an entry that passes <see cref="Verify"/>. Keys are rotated by making a new one current
/// and keeping the old ones in <see cref="Previous"/> until the entries they signed have aged out.
/// </summary>
public sealed class EntryKeys
{
    /// <summary>Fewest bytes a key may have.</summary>
    public const int MinKeyBytes = 32;

    /// <summary>Keys used to sign and check entries, the current one first.</summary>
    public EntryKeys(byte[] current, IReadOnlyList<byte[]>? previous = null)
    {
        ArgumentNullException.ThrowIfNull(current);
        if (current.Length < MinKeyBytes || (previous ?? []).Any(k => k.Length < MinKeyBytes))
        {
            throw new ArgumentException($"entry keys must have at least {MinKeyBytes} bytes");
        }

        Current = current;
        Previous = previous ?? [];
    }

    /// <summary>The key new entries are signed with.</summary>
    public byte[] Current { get; }

    /// <summary>Keys whose signatures are still accepted.</summary>
    public IReadOnlyList<byte[]> Previous { get; }

    /// <summary>The MAC of an entry, as 64 lower-case hex digits.</summary>
    public string Sign(string ns, Digest key, LayerDescriptor layer, IReadOnlyList<BlobRef> blobs) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(Current, Message(ns, key, layer, blobs)));

    /// <summary>True when <paramref name="mac"/> is the MAC of the entry under the current key or a previous one.</summary>
    public bool Verify(string ns, Digest key, LayerDescriptor layer, IReadOnlyList<BlobRef> blobs, string mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        if (mac.Length != 64 || !mac.All(char.IsAsciiHexDigitLower))
        {
            return false;
        }

        var given = Convert.FromHexString(mac);
        var message = Message(ns, key, layer, blobs);
        var valid = false;
        foreach (var candidate in Previous.Prepend(Current))
        {
            valid |= CryptographicOperations.FixedTimeEquals(HMACSHA256.HashData(candidate, message), given);
        }

        return valid;
    }

    /// <summary>Reads a key written as base64 (what <c>openssl rand -base64 32</c> prints).</summary>
    /// <exception cref="FormatException">Not base64, or shorter than <see cref="MinKeyBytes"/>.</exception>
    public static byte[] Parse(string text)
    {
        var key = Convert.FromBase64String(text?.Trim() ?? "");
        return key.Length >= MinKeyBytes ? key : throw new FormatException($"a key must have at least {MinKeyBytes} bytes, this has {key.Length}");
    }

    // Every field is length-prefixed, so no two different entries give the same message.
    private static byte[] Message(string ns, Digest key, LayerDescriptor layer, IReadOnlyList<BlobRef> blobs)
    {
        using var buffer = new MemoryStream();
        void Text(string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            Number(bytes.Length);
            buffer.Write(bytes);
        }

        void Number(long value)
        {
            Span<byte> bytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64BigEndian(bytes, value);
            buffer.Write(bytes);
        }

        Text("cacheservice entry v1");
        Text(ns);
        Text(key.Value);
        Text(layer.Digest.Value);
        Text(layer.DiffId.Value);
        Number(layer.Size);
        Text(layer.MediaType);
        // As a set: engines may hand the blobs back in another order than they were committed in.
        var set = blobs.DistinctBy(b => b.Digest).OrderBy(b => b.Digest.Value, StringComparer.Ordinal).ToList();
        Number(set.Count);
        foreach (var blob in set)
        {
            Text(blob.Digest.Value);
            Number(blob.Size);
        }

        return buffer.ToArray();
    }
}
