using System.Security.Cryptography;
using CacheService.Api.V1;
using Google.Protobuf;
using Grpc.Core;

namespace CacheService.Testing;

/// <summary>Layer bytes and the client-side calls tests repeat.</summary>
public static class Layers
{
    public const string MediaType = "application/vnd.oci.image.layer.v1.tar+gzip";

    public static byte[] Random(int size, int seed)
    {
        var data = new byte[size];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static string DigestOf(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    public static LayerDescriptor Descriptor(byte[] data) => new()
    {
        Digest = DigestOf(data),
        DiffId = DigestOf([.. data, 0]),
        Size = data.Length,
        MediaType = MediaType,
    };

    public static string Key(string name) => DigestOf(System.Text.Encoding.UTF8.GetBytes("key " + name));

    public static async Task<UploadLayerResponse> UploadAsync(
        LayerCache.LayerCacheClient client, string ns, byte[] data, string? digest = null, long? size = null, int chunkSize = 64 * 1024)
    {
        using var call = client.UploadLayer();
        await call.RequestStream.WriteAsync(new UploadLayerRequest
        {
            Header = new UploadHeader { Namespace = ns, Digest = digest ?? DigestOf(data), Size = size ?? data.Length, MediaType = MediaType },
        });
        for (var offset = 0; offset < data.Length; offset += chunkSize)
        {
            var chunk = ByteString.CopyFrom(data, offset, Math.Min(chunkSize, data.Length - offset));
            try
            {
                await call.RequestStream.WriteAsync(new UploadLayerRequest { Chunk = chunk });
            }
            catch (RpcException)
            {
                break; // the server answered early (e.g. the blob already exists); the response says why
            }
        }

        await call.RequestStream.CompleteAsync();
        return await call;
    }

    public static async Task<byte[]> DownloadAsync(LayerCache.LayerCacheClient client, string ns, string digest, long offset = 0)
    {
        using var call = client.DownloadLayer(new DownloadLayerRequest { Namespace = ns, Digest = digest, Offset = offset });
        using var bytes = new MemoryStream();
        await foreach (var response in call.ResponseStream.ReadAllAsync())
        {
            response.Chunk.WriteTo(bytes);
        }

        return bytes.ToArray();
    }

    public static async Task<LayerDescriptor> UploadAndCommitAsync(LayerCache.LayerCacheClient client, string ns, string key, byte[] data)
    {
        await UploadAsync(client, ns, data);
        var layer = Descriptor(data);
        await client.CommitAsync(new CommitRequest { Namespace = ns, Key = Key(key), Layer = layer });
        return layer;
    }

    /// <summary>Writes a plain (ustar) tar holding <paramref name="files"/>.</summary>
    public static async Task WriteTarAsync(string path, params (string Name, byte[] Content)[] files)
    {
        await using var file = File.Create(path);
        await using var tar = new System.Formats.Tar.TarWriter(file, System.Formats.Tar.TarEntryFormat.Ustar);
        foreach (var (name, content) in files)
        {
            await tar.WriteEntryAsync(new System.Formats.Tar.UstarTarEntry(System.Formats.Tar.TarEntryType.RegularFile, name) { DataStream = new MemoryStream(content) });
        }
    }
}
