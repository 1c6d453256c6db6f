namespace CacheService.Server.Registry;

/// <summary>
/// What the OCI Distribution facade lets clients delete, and how it serves blobs (configuration
/// section <c>CacheService:Registry</c>). A delete needs write scope on the repository either way;
/// a kind turned off answers <c>405 UNSUPPORTED</c>, as the spec allows.
/// </summary>
public sealed class RegistryOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Registry";

    /// <summary><c>DELETE /v2/NAME/manifests/DIGEST</c>: the manifest and every tag on it. Default true.</summary>
    public bool AllowManifestDelete { get; set; } = true;

    /// <summary><c>DELETE /v2/NAME/manifests/TAG</c>: the tag only. Default true.</summary>
    public bool AllowTagDelete { get; set; } = true;

    /// <summary><c>DELETE /v2/NAME/blobs/DIGEST</c>: the blob and every entry that references it. Default true.</summary>
    public bool AllowBlobDelete { get; set; } = true;

    /// <summary>
    /// Answer a blob GET with <c>307</c> to a presigned URL of the object store, as CNCF
    /// Distribution's S3 <c>redirect</c> option does, so the bytes skip the server (they are not
    /// verified on the way out; the client checks the digest). Needs the S3 engine with
    /// <c>CacheService:S3:DirectTransfer</c>, and clients that can reach the object store. Default false.
    /// </summary>
    public bool RedirectBlobGets { get; set; }

    /// <summary>Problems with the values, empty when valid; <paramref name="presigns"/> is true when the blob store can presign.</summary>
    public IEnumerable<string> Validate(bool presigns)
    {
        if (RedirectBlobGets && !presigns)
        {
            yield return "RedirectBlobGets needs presigned URLs: the S3 blob engine with CacheService:S3:DirectTransfer=true";
        }
    }
}
