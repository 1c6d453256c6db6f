namespace CacheService.Core;

/// <summary>One stored layer blob, as a cache entry returns it.</summary>
/// <param name="Digest">Digest of the blob as stored (usually compressed).</param>
/// <param name="DiffId">Digest of the uncompressed layer; it moves the chain state forward.</param>
/// <param name="Size">Blob size in bytes.</param>
/// <param name="MediaType">OCI media type of the blob.</param>
public sealed record LayerDescriptor(Digest Digest, Digest DiffId, long Size, string MediaType);

/// <summary>A blob an index entry keeps alive: its digest and size.</summary>
public readonly record struct BlobRef(Digest Digest, long Size);
