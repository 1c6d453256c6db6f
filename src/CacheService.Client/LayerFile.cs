using System.IO.Compression;
using System.Security.Cryptography;
using CacheService.Core;

namespace CacheService.Client;

/// <summary>Describes a layer file for upload: blob digest and size, diff id and media type.</summary>
public static class LayerFile
{
    /// <summary>Media type of a gzip-compressed layer.</summary>
    public const string GzipMediaType = "application/vnd.oci.image.layer.v1.tar+gzip";

    /// <summary>Media type of an uncompressed layer.</summary>
    public const string TarMediaType = "application/vnd.oci.image.layer.v1.tar";

    /// <summary>
    /// Reads <paramref name="path"/>, a gzip-compressed or plain tar. The digest covers the bytes
    /// as stored; the diff id covers the uncompressed tar, as OCI defines it.
    /// </summary>
    /// <exception cref="InvalidFieldException">The file is neither gzip nor tar.</exception>
    public static async Task<LayerDescriptor> DescribeAsync(string path, CancellationToken cancellationToken = default)
    {
        await using var file = File.OpenRead(path);
        var magic = new byte[262];
        var read = await file.ReadAtLeastAsync(magic, magic.Length, throwOnEndOfStream: false, cancellationToken);
        file.Position = 0;
        var gzip = read >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        if (!gzip && !(read >= 262 && magic.AsSpan(257, 5).SequenceEqual("ustar"u8)))
        {
            throw new InvalidFieldException("layer", $"'{path}' is neither a gzip-compressed nor a plain tar");
        }

        var blob = Digest.FromHash(await SHA256.HashDataAsync(file, cancellationToken));
        var diffId = blob;
        if (gzip)
        {
            file.Position = 0;
            await using var tar = new GZipStream(file, CompressionMode.Decompress, leaveOpen: true);
            diffId = Digest.FromHash(await SHA256.HashDataAsync(tar, cancellationToken));
        }

        return new LayerDescriptor(blob, diffId, file.Length, gzip ? GzipMediaType : TarMediaType);
    }
}
