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
/// Layout, big-endian, as 0-based offsets (the constants below; the Lua in <see cref="Scripts"/>
/// is generated from them, so the two cannot drift apart; the scripts read the fields marked *):
/// <code>
///  0        version (1)
///  1..8     created, ms since the epoch (double)
///  9..16  * last access, ms (double)
///  17..24 * hits (double)
///  25..32 * layer size (double)
///  33..64 * layer digest (32 raw bytes)
///  65..96   diff id (32 raw bytes)
///  97..98 * n, count of extra blobs; 0 means the entry keeps only its layer blob alive
///  99..   * n x (digest 32 bytes, size double)
///  then     media type: a code byte from <see cref="KnownMediaTypes"/>, or 0, a length byte and the text
///  then     the MAC: a length byte (0 or 32) and its raw bytes (version 2 on; version 1 has no MAC)
/// </code>
/// Doubles hold integers exactly up to 2^53, far beyond any size or timestamp here.
/// </remarks>
internal static class EntryCodec
{
    public const int CreatedAt = 1;
    public const int LastAccessAt = 9;
    public const int HitsAt = 17;
    public const int SizeAt = 25;
    public const int DigestAt = 33;
    public const int DiffIdAt = 65;
    public const int CountAt = 97;
    public const int FixedLength = 99;
    public const int BlobStride = 40;
    public const int DigestLength = 32;
    private const byte Version = 2;

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

        var mac = entry.Mac.Length == 0 ? [] : Convert.FromHexString(entry.Mac);
        var buffer = new byte[FixedLength + (extra.Count * BlobStride) + 1 + (mediaCode > 0 ? 0 : 1 + mediaText.Length) + 1 + mac.Length];
        var span = buffer.AsSpan();
        span[0] = Version;
        var ms = now.ToUnixTimeMilliseconds();
        BinaryPrimitives.WriteDoubleBigEndian(span[CreatedAt..], ms);
        BinaryPrimitives.WriteDoubleBigEndian(span[LastAccessAt..], ms);
        BinaryPrimitives.WriteDoubleBigEndian(span[HitsAt..], 0);
        BinaryPrimitives.WriteDoubleBigEndian(span[SizeAt..], entry.Layer.Size);
        Raw(entry.Layer.Digest).CopyTo(span[DigestAt..]);
        Raw(entry.Layer.DiffId).CopyTo(span[DiffIdAt..]);
        BinaryPrimitives.WriteUInt16BigEndian(span[CountAt..], checked((ushort)extra.Count));
        var at = FixedLength;
        foreach (var blob in extra)
        {
            Raw(blob.Digest).CopyTo(span[at..]);
            BinaryPrimitives.WriteDoubleBigEndian(span[(at + DigestLength)..], blob.Size);
            at += BlobStride;
        }

        if (mediaCode > 0)
        {
            span[at++] = (byte)mediaCode;
        }
        else
        {
            span[at] = 0;
            span[at + 1] = (byte)mediaText.Length;
            mediaText.CopyTo(span[(at + 2)..]);
            at += 2 + mediaText.Length;
        }

        span[at] = (byte)mac.Length;
        mac.CopyTo(span[(at + 1)..]);
        return buffer;
    }

    public static IndexEntry Decode(Digest key, ReadOnlySpan<byte> value, string preimage)
    {
        if (value.Length < FixedLength || value[0] is not (1 or Version))
        {
            throw new InvalidDataException($"index entry {key} has an unknown encoding");
        }

        var size = (long)BinaryPrimitives.ReadDoubleBigEndian(value[SizeAt..]);
        var digest = FromRaw(value.Slice(DigestAt, DigestLength));
        var count = BinaryPrimitives.ReadUInt16BigEndian(value[CountAt..]);
        var blobs = new List<BlobRef>(Math.Max(1, (int)count));
        var at = FixedLength;
        for (var i = 0; i < count; i++, at += BlobStride)
        {
            blobs.Add(new BlobRef(FromRaw(value.Slice(at, DigestLength)), (long)BinaryPrimitives.ReadDoubleBigEndian(value[(at + DigestLength)..])));
        }

        if (count == 0)
        {
            blobs.Add(new BlobRef(digest, size));
        }

        var mediaType = value[at] > 0 ? KnownMediaTypes[value[at]] : Encoding.UTF8.GetString(value.Slice(at + 2, value[at + 1]));
        at += value[at] > 0 ? 1 : 2 + value[at + 1];
        var mac = value[0] == 1 || value[at] == 0 ? "" : Convert.ToHexStringLower(value.Slice(at + 1, value[at]));
        return new IndexEntry(
            key,
            new LayerDescriptor(digest, FromRaw(value.Slice(DiffIdAt, DigestLength)), size, mediaType),
            blobs,
            preimage,
            DateTimeOffset.FromUnixTimeMilliseconds((long)BinaryPrimitives.ReadDoubleBigEndian(value[CreatedAt..])),
            DateTimeOffset.FromUnixTimeMilliseconds((long)BinaryPrimitives.ReadDoubleBigEndian(value[LastAccessAt..])),
            (long)BinaryPrimitives.ReadDoubleBigEndian(value[HitsAt..]),
            mac);
    }

    private static bool IsLayerOnly(NewEntry entry) =>
        entry.Blobs.Count == 1 && entry.Blobs[0].Digest == entry.Layer.Digest && entry.Blobs[0].Size == entry.Layer.Size;
}
