using System.Net;
using CacheService.Core;
using CacheService.Core.Access;
using TokensFileFormat = CacheService.Core.Access.TokensFile;

namespace CacheService.Server.Access;

/// <summary>
/// Who may do what (configuration section <c>CacheService:Auth</c>). With no
/// <see cref="TokensFile"/> the server is open, which it allows only on a loopback address; see
/// <see cref="AnonymousGrant"/> for what a request without credentials may do.
/// </summary>
public sealed class AuthOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Auth";

    /// <summary>
    /// The tokens file (<c>layercache token create --tokens-file</c> writes it), read at start and
    /// again whenever its content changes. Unset: no tokens, no authentication. Default unset.
    /// </summary>
    public string? TokensFile { get; set; }

    /// <summary>
    /// Serve requests without credentials, with <see cref="AnonymousScopes"/>. Needed to run
    /// without <see cref="TokensFile"/> off loopback; with tokens, it lets laptops read without
    /// one. Default false.
    /// </summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>The scopes of a request without credentials when <see cref="AllowAnonymous"/> is set. Default <c>read:*</c>.</summary>
    public string[]? AnonymousScopes { get; set; }

    /// <summary>How often the tokens file is read again to see whether it changed. Default 2 seconds; 0 reads it on every request.</summary>
    public TimeSpan ReloadInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Failed authentications one client address may make a minute; past it, every request of
    /// that address that carries credentials is refused until the allowance refills. Default 30.
    /// </summary>
    public int FailedAttemptsPerMinute { get; set; } = 30;

    /// <summary>How long a registry bearer token (from <c>/auth/token</c>) is good for. Default 5 minutes.</summary>
    public TimeSpan RegistryTokenLifetime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Leave the status page and <c>/api/status</c> open to anyone. Default false: they need a read scope.</summary>
    public bool OpenStatusPage { get; set; }

    /// <summary>True when requests are checked against tokens at all.</summary>
    public bool TokensRequired => !string.IsNullOrEmpty(TokensFile);

    /// <summary>
    /// The scopes of a request without credentials: <see cref="AnonymousScopes"/> when
    /// <see cref="AllowAnonymous"/> is set; <c>admin</c> on an open server (no tokens file, which
    /// <see cref="Validate"/> allows only on loopback: <c>make run</c> stays as easy as it was);
    /// none otherwise.
    /// </summary>
    public IReadOnlyList<Scope> AnonymousGrant() =>
        AllowAnonymous ? [.. (AnonymousScopes ?? ["read:*"]).Select(s => Scope.Parse(s, "AnonymousScopes"))]
        : TokensRequired ? []
        : [Scope.Parse("admin")];

    /// <summary>Problems with the values, empty when valid; <paramref name="listenAddress"/> is where the server listens.</summary>
    public IEnumerable<string> Validate(string listenAddress)
    {
        if (!TokensRequired && !AllowAnonymous && IPAddress.TryParse(listenAddress, out var address) && !IPAddress.IsLoopback(address))
        {
            yield return $"the server listens on {listenAddress}, beyond this machine, and no tokens are configured, so anyone who reaches it could "
                + "write every namespace. Make tokens with 'layercache token create --tokens-file FILE' and set CacheService:Auth:TokensFile=FILE, "
                + "or set CacheService:Auth:AllowAnonymous=true to serve anyone on purpose (with AnonymousScopes, read:* unless set)";
        }

        foreach (var scope in AnonymousScopes ?? [])
        {
            string? problem = null;
            try
            {
                Scope.Parse(scope, "AnonymousScopes");
            }
            catch (InvalidFieldException e)
            {
                problem = e.Message;
            }

            if (problem is not null) yield return problem;
        }

        if (TokensRequired)
        {
            string? problem = null;
            try
            {
                if (!File.Exists(TokensFile))
                {
                    problem = $"TokensFile {Path.GetFullPath(TokensFile!)} does not exist; 'layercache token create --tokens-file' makes it";
                }
                else
                {
                    TokensFileFormat.Read(TokensFile!);
                }
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                problem = $"TokensFile: {e.Message}";
            }

            if (problem is not null) yield return problem;
        }

        if (ReloadInterval < TimeSpan.Zero) yield return "ReloadInterval must not be negative";
        if (FailedAttemptsPerMinute is < 1 or > 1_000_000) yield return "FailedAttemptsPerMinute must be 1-1000000";
        if (RegistryTokenLifetime < TimeSpan.FromSeconds(10) || RegistryTokenLifetime > TimeSpan.FromDays(1)) yield return "RegistryTokenLifetime must be 10 seconds to 1 day";
    }
}
