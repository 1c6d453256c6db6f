using CacheService.Core;

namespace CacheService.Blobs.S3;

/// <summary>Where objects live in the bucket: blobs, and the staging area of direct uploads.</summary>
public sealed partial class S3BlobStore
{
    // Staged direct uploads; "_" cannot start a namespace, so no blob lives under this name.
    private string StagingRoot => $"{options.Prefix}/_direct/";

    private string StagingName(string ns, string uploadId) =>
        $"{StagingRoot}{NamespaceName.Validate(ns, "namespace")}/{uploadId}";

    private string ObjectName(string ns, Digest digest) =>
        $"{options.Prefix}/{NamespaceName.Validate(ns, "namespace")}{Blobs}{digest.Hex}";
}
