namespace CacheService.Core;

/// <summary>
/// Base of the failures the core reports on purpose. The server maps each subtype to one gRPC
/// status in a single interceptor; any other exception is an internal error.
/// </summary>
public abstract class CacheServiceException(string message, Exception? inner = null)
    : Exception(message, inner);

/// <summary>Bad input. <see cref="Field"/> names the request field at fault.</summary>
public sealed class InvalidFieldException(string field, string problem)
    : CacheServiceException($"{field}: {problem}")
{
    /// <summary>The request field at fault, e.g. <c>namespace</c> or <c>layer.digest</c>.</summary>
    public string Field { get; } = field;

    /// <summary>What is wrong with the field.</summary>
    public string Problem { get; } = problem;

    /// <summary>The same problem, with the field named inside <paramref name="parent"/> (e.g. <c>steps[2]</c>).</summary>
    public InvalidFieldException Within(string parent) => new($"{parent}.{Field}", Problem);
}

/// <summary>A blob that is not stored.</summary>
public sealed class BlobNotFoundException(string ns, Digest digest)
    : CacheServiceException($"blob {digest} is not stored in namespace {ns}");

/// <summary>An operation whose precondition does not hold (e.g. commit of an absent blob).</summary>
public sealed class PreconditionFailedException(string message) : CacheServiceException(message);

/// <summary>A request that would exceed a namespace budget or a limit.</summary>
public sealed class QuotaExceededException(string message) : CacheServiceException(message);

/// <summary>Stored bytes that no longer hash to their digest.</summary>
public sealed class BlobCorruptedException(string ns, Digest digest)
    : CacheServiceException($"blob {digest} in namespace {ns} is corrupt");

/// <summary>A backend (index or blob store) that cannot be reached. Safe to retry later.</summary>
public sealed class BackendUnavailableException(string backend, Exception? inner = null)
    : CacheServiceException($"{backend} is unavailable", inner)
{
    /// <summary>Which backend failed, e.g. <c>index</c> or <c>blobs</c>.</summary>
    public string Backend { get; } = backend;
}

/// <summary>
/// A request that names no credentials, or credentials the server does not know, or (for a
/// registry bearer token) credentials issued for less than the request needs: the client should
/// authenticate again, for <see cref="Needed"/> when that is known.
/// </summary>
public sealed class NotAuthenticatedException(string message, (Access.AccessLevel Level, string Namespace)? needed = null) : CacheServiceException(message)
{
    /// <summary>What the request needed, when it was refused for want of it.</summary>
    public (Access.AccessLevel Level, string Namespace)? Needed { get; } = needed;
}

/// <summary>A known caller without the scope a request needs.</summary>
public sealed class AccessDeniedException(string caller, string scope)
    : CacheServiceException($"token {caller} lacks scope {scope}")
{
    /// <summary>The scope that would have allowed the request, e.g. <c>write:team/main</c>.</summary>
    public string Scope { get; } = scope;
}

/// <summary>Too many failed authentications from one client address; it may try again later.</summary>
public sealed class TooManyAttemptsException(string message, TimeSpan retryAfter) : CacheServiceException(message)
{
    /// <summary>How long until the address may try again.</summary>
    public TimeSpan RetryAfter { get; } = retryAfter;

    /// <summary><see cref="RetryAfter"/> in whole seconds, rounded up, as an HTTP <c>Retry-After</c> header gives it.</summary>
    public string RetryAfterHeader => ((int)Math.Ceiling(RetryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
