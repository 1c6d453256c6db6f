namespace CacheService.Server.Registry;

/// <summary>
/// What the OCI Distribution facade lets clients delete (configuration section
/// <c>CacheService:Registry</c>). A delete needs write scope on the repository either way; a kind
/// turned off answers <c>405 UNSUPPORTED</c>, as the spec allows.
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
}
