using System.Text.Json;
using CacheService.Core;

namespace CacheService.Server.Registry;

/// <summary>An answer in the spec's error format, and the one map from the core's failures to it.</summary>
internal sealed class RegistryError(int status, string code, string message) : Exception(message)
{
    public int Status { get; } = status;

    public string Code { get; } = code;

    /// <summary>The registry error for <paramref name="e"/>; null for an unexpected failure (a 500 with no detail).</summary>
    public static RegistryError? Describe(Exception e) => e switch
    {
        RegistryError error => error,
        InvalidFieldException { Field: "name" or "from" } => new RegistryError(400, "NAME_INVALID", e.Message),
        InvalidFieldException { Field: "digest" or "header.digest" or "header.size" or "size" } => new RegistryError(400, "DIGEST_INVALID", e.Message),
        InvalidFieldException { Field: "manifest" or "reference" } => new RegistryError(400, "MANIFEST_INVALID", e.Message),
        InvalidFieldException => new RegistryError(400, "DIGEST_INVALID", e.Message),
        PreconditionFailedException => new RegistryError(400, "MANIFEST_BLOB_UNKNOWN", e.Message),
        BlobNotFoundException => new RegistryError(404, "BLOB_UNKNOWN", e.Message),
        BlobCorruptedException => new RegistryError(404, "BLOB_UNKNOWN", e.Message + "; it was removed, push it again"),
        QuotaExceededException => new RegistryError(413, "DENIED", e.Message),
        BackendUnavailableException => new RegistryError(503, "UNAVAILABLE", e.Message),
        NotAuthenticatedException => new RegistryError(401, "UNAUTHORIZED", e.Message),
        AccessDeniedException => new RegistryError(403, "DENIED", e.Message),
        TooManyAttemptsException => new RegistryError(429, "TOOMANYREQUESTS", e.Message),
        JsonException => new RegistryError(400, "MANIFEST_INVALID", "the manifest is not valid JSON"),
        _ => null,
    };
}
