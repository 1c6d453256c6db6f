using System.Buffers.Binary;
using System.Text;
using CacheService.Core;
using CacheService.Core.Index;

namespace CacheService.Index.Redis;

/// <summary>
/// The binary form of an index entry in Redis. Compact on purpose: an entry is a field of a small
/// bucket hash (listpack-encoded), so every byte saved here is a byte per entry.
/// </summary>
/// <remarks>
/// Layout, big-endian (Lua positions 1-based; the scripts read the fields marked *):
/// <code>
///  1        version (1)
///  2..9     created, ms since the epoch (double)
///  10..17 * last access, ms (double)
///  18..25 * hits (double)
///  26..33 * layer size (double)
///  34..65 * layer digest (32 raw bytes)
///  66..97   diff id (32 raw bytes)
///  98..99 * n, count of extra blobs; 0 means the entry keeps only its layer blob alive
///  100..  * n x (digest 32 bytes, size double)
///  then     media type: a code byte from <see cref="KnownMediaTypes"/>, or 0, a length byte and the text
/// </code>
/// Doubles hold integers exactly up to 2^53, far beyond any size or timestamp here.
/// </remarks>
internal static class EntryCodec
{
    private const byte Version = 1;
    private const int FixedLength = 99;

    // Media types builders actually send; each costs one byte instead of ~45.
    private static readonly string[] KnownMediaTypes =
    [
        "",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.container.image.v1+json",
    ];

    public static byte[] Raw(Digest digest) => Convert.FromHexString(digest.Hex);

    public static Digest FromRaw(ReadOnlySpan<byte> raw) => Digest.FromHash(raw);

    public static byte[] Encode(NewEntry entry, DateTimeOffset now)
    {
        var extra = IsLayerOnly(entry) ? [] : entry.Blobs;
        var mediaCode = Array.IndexOf(KnownMediaTypes, entry.Layer.MediaType);
        var mediaText = mediaCode > 0 ? [] : Encoding.UTF8.GetBytes(entry.Layer.MediaType);
        if (mediaText.Length > 255)
        {
            throw new InvalidFieldException("layer.media_type", "is longer than 255 bytes");
        }

        var buffer = new byte[FixedLength + (extra.Count * 40) + 1 + (mediaCode > 0 ? 0 : 1 + mediaText.Length)];
        var span = buffer.AsSpan();
        span[0] = Version;
        var ms = now.ToUnixTimeMilliseconds();
        BinaryPrimitives.WriteDoubleBigEndian(span[1..], ms);
        BinaryPrimitives.WriteDoubleBigEndian(span[9..], ms);
        BinaryPrimitives.WriteDoubleBigEndian(span[17..], 0);
        BinaryPrimitives.WriteDoubleBigEndian(span[25..], entry.Layer.Size);
        Raw(entry.Layer.Digest).CopyTo(span[33..]);
        Raw(entry.Layer.DiffId).CopyTo(span[65..]);
        BinaryPrimitives.WriteUInt16BigEndian(span[97..], checked((ushort)extra.Count));
        var at = FixedLength;
        foreach (var blob in extra)
        {
            Raw(blob.Digest).CopyTo(span[at..]);
            BinaryPrimitives.WriteDoubleBigEndian(span[(at + 32)..], blob.Size);
            at += 40;
        }

        if (mediaCode > 0)
        {
            span[at] = (byte)mediaCode;
        }
        else
        {
            span[at] = 0;
            span[at + 1] = (byte)mediaText.Length;
            mediaText.CopyTo(span[(at + 2)..]);
        }

        return buffer;
    }

    public static IndexEntry Decode(Digest key, ReadOnlySpan<byte> value, string preimage)
    {
        if (value.Length < FixedLength || value[0] != Version)
        {
            throw new InvalidDataException($"index entry {key} has an unknown encoding");
        }

        var size = (long)BinaryPrimitives.ReadDoubleBigEndian(value[25..]);
        var digest = FromRaw(value.Slice(33, 32));
        var count = BinaryPrimitives.ReadUInt16BigEndian(value[97..]);
        var blobs = new List<BlobRef>(Math.Max(1, (int)count));
        var at = FixedLength;
        for (var i = 0; i < count; i++, at += 40)
        {
            blobs.Add(new BlobRef(FromRaw(value.Slice(at, 32)), (long)BinaryPrimitives.ReadDoubleBigEndian(value[(at + 32)..])));
        }

        if (count == 0)
        {
            blobs.Add(new BlobRef(digest, size));
        }

        var mediaType = value[at] > 0 ? KnownMediaTypes[value[at]] : Encoding.UTF8.GetString(value.Slice(at + 2, value[at + 1]));
        return new IndexEntry(
            key,
            new LayerDescriptor(digest, FromRaw(value.Slice(65, 32)), size, mediaType),
            blobs,
            preimage,
            DateTimeOffset.FromUnixTimeMilliseconds((long)BinaryPrimitives.ReadDoubleBigEndian(value[1..])),
            DateTimeOffset.FromUnixTimeMilliseconds((long)BinaryPrimitives.ReadDoubleBigEndian(value[9..])),
            (long)BinaryPrimitives.ReadDoubleBigEndian(value[17..]));
    }

    private static bool IsLayerOnly(NewEntry entry) =>
        entry.Blobs.Count == 1 && entry.Blobs[0].Digest == entry.Layer.Digest && entry.Blobs[0].Size == entry.Layer.Size;
}
