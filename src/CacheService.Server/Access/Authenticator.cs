using System.Text;
using System.Threading.RateLimiting;
using CacheService.Core;
using CacheService.Core.Access;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Access;

/// <summary>
/// Turns a request's credentials into a <see cref="Caller"/>, the same way on both ports:
/// <c>authorization: Bearer &lt;secret&gt;</c>, <c>Basic</c> with the secret as the password (what
/// <c>--creds user:secret</c> sends), or a registry bearer token from <c>/auth/token</c>. A request
/// without credentials is the anonymous caller; credentials that are given must be good. Failures
/// are counted per client address, and an address past its allowance is refused before its
/// credentials are looked at.
/// </summary>
internal sealed class Authenticator : IDisposable
{
    private readonly AuthOptions _options;
    private readonly TokenStore _tokens;
    private readonly RegistryTokens _registryTokens;
    private readonly ILogger<Authenticator> _logger;
    private readonly IReadOnlyList<Scope> _anonymousScopes;
    private readonly PartitionedRateLimiter<string> _failures;

    public Authenticator(IOptions<AuthOptions> options, TokenStore tokens, RegistryTokens registryTokens, ILogger<Authenticator> logger)
    {
        _options = options.Value;
        _tokens = tokens;
        _registryTokens = registryTokens;
        _logger = logger;
        _anonymousScopes = _options.AnonymousGrant();
        var allowance = _options.FailedAttemptsPerMinute;
        _failures = PartitionedRateLimiter.Create<string, string>(address => RateLimitPartition.GetTokenBucketLimiter(address, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = allowance,
            TokensPerPeriod = 1,
            ReplenishmentPeriod = TimeSpan.FromMinutes(1) / allowance,
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
    }

    /// <summary>True when the server checks credentials at all (a tokens file is configured).</summary>
    public bool TokensRequired => _options.TokensRequired;

    /// <summary>The caller of <paramref name="http"/>: by its credentials, else by its client certificate, else anonymous.</summary>
    /// <exception cref="NotAuthenticatedException">Credentials that name no valid token.</exception>
    /// <exception cref="TooManyAttemptsException">The client address failed too often lately.</exception>
    public Caller Authenticate(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var credentials = http.Request.Headers.Authorization.ToString();
        if (!_options.TokensRequired)
        {
            return Caller.Anonymous(_anonymousScopes);
        }

        if (credentials.Length == 0)
        {
            // Kestrel admits a client certificate only if it chains to the client CA (ServerCertificates).
            return http.Connection.ClientCertificate is { } certificate ? FromCertificate(certificate) : Caller.Anonymous(_anonymousScopes);
        }

        var address = http.ClientAddress();
        if (_failures.GetStatistics(address) is { CurrentAvailablePermits: <= 0 })
        {
            throw new TooManyAttemptsException($"too many failed authentications from {address}; try again in a minute", TimeSpan.FromMinutes(1) / _options.FailedAttemptsPerMinute);
        }

        var (caller, guessed) = FromCredentials(credentials);
        if (caller is not null)
        {
            return caller;
        }

        if (!guessed)
        {
            // A bearer token this server signed that has expired, or whose token was revoked: a
            // client to send back for a new one, not someone guessing.
            throw new NotAuthenticatedException("the bearer token has expired or its token was revoked; get a new one");
        }

        using (var lease = _failures.AttemptAcquire(address))
        {
            if (!lease.IsAcquired)
            {
                Log.AuthenticationThrottled(_logger, address, _options.FailedAttemptsPerMinute);
            }
        }

        throw new NotAuthenticatedException("the credentials name no valid token (unknown, revoked or expired)");
    }

    /// <summary>A bearer token for the registry, for the token behind <paramref name="caller"/> (or the anonymous caller).</summary>
    public string IssueRegistryToken(Caller caller, IReadOnlyList<RegistryGrant> grants) =>
        _registryTokens.Issue(caller.Name, grants, _options.RegistryTokenLifetime);

    /// <summary>How long a registry bearer token is good for.</summary>
    public TimeSpan RegistryTokenLifetime => _options.RegistryTokenLifetime;

    /// <summary>True when a request without credentials may do anything at all.</summary>
    public bool AnonymousAllowed => _anonymousScopes.Count > 0;

    public void Dispose() => _failures.Dispose();

    // A client certificate stands for the token its common name names, with that token's scopes.
    private Caller FromCertificate(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        var name = certificate.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, forIssuer: false);
        return _tokens.FindByName(name) is { } token
            ? Caller.ForToken(token)
            : throw new NotAuthenticatedException($"the client certificate's common name '{name}' names no token");
    }

    // The caller the credentials prove, or null; Guessed is false for a bearer token this server
    // signed (expired, or for a revoked token), which does not count as a failed attempt.
    private (Caller? Caller, bool Guessed) FromCredentials(string credentials)
    {
        var space = credentials.IndexOf(' ', StringComparison.Ordinal);
        var scheme = space < 0 ? credentials : credentials[..space];
        var value = space < 0 ? string.Empty : credentials[(space + 1)..].Trim();
        if (scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            if (RegistryTokens.IsRegistryToken(value))
            {
                return _registryTokens.Verify(value) switch
                {
                    null => (null, true),
                    { Expired: true } => (null, false),
                    { TokenName: null } anonymous => (AnonymousAllowed ? Caller.Anonymous(_anonymousScopes, anonymous.Narrowing) : null, false),
                    { TokenName: { } name } bearer => (_tokens.FindByName(name) is { } named ? Caller.ForToken(named, bearer.Narrowing) : null, false),
                };
            }

            return (_tokens.FindBySecret(value) is { } token ? Caller.ForToken(token) : null, true);
        }

        if (scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase))
        {
            var buffer = new byte[value.Length];
            if (!Convert.TryFromBase64String(value, buffer, out var written))
            {
                return (null, true);
            }

            // user:secret; the user name is free (clients insist on one), the secret decides.
            var pair = Encoding.UTF8.GetString(buffer, 0, written);
            var colon = pair.IndexOf(':', StringComparison.Ordinal);
            return (colon >= 0 && _tokens.FindBySecret(pair[(colon + 1)..]) is { } token ? Caller.ForToken(token) : null, true);
        }

        return (null, true);
    }
}
