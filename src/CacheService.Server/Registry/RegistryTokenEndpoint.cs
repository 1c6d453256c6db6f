using CacheService.Core;
using CacheService.Core.Access;
using CacheService.Server.Access;

namespace CacheService.Server.Registry;

/// <summary>
/// Docker's token flow, so registry clients log in unchanged (<c>buildah --creds user:secret</c>,
/// <c>skopeo --creds</c>, <c>podman login</c>): a request without the right credentials gets a 401
/// whose <c>WWW-Authenticate</c> challenge names <c>/auth/token</c>; the client asks there, with
/// the secret as a Basic password (the user name is free), for the repositories and actions it
/// needs (<c>scope=repository:team/app:pull,push</c>), and gets a short-lived bearer token for
/// those of them the secret's scopes allow.
/// </summary>
internal static class RegistryTokenEndpoint
{
    /// <summary>The path of the token endpoint on the HTTP port.</summary>
    public const string Path = "/auth/token";

    /// <summary>The <c>service</c> the challenge names and the endpoint expects.</summary>
    public const string Service = "cacheservice";

    public static void MapRegistryTokenEndpoint(this WebApplication app) =>
        app.MapGet(Path, (HttpContext http, Authenticator authenticator) => IssueAsync(http, authenticator));

    /// <summary>The challenge of a 401: where to get a token, and for what when that is known.</summary>
    public static string Challenge(HttpContext http, (AccessLevel Level, string Namespace)? needed)
    {
        var challenge = $"Bearer realm=\"{http.Request.Scheme}://{http.Request.Host}{Path}\",service=\"{Service}\"";
        return needed is { } n ? $"{challenge},scope=\"repository:{n.Namespace}:{(n.Level == AccessLevel.Read ? "pull" : "pull,push")}\"" : challenge;
    }

    private static async Task IssueAsync(HttpContext http, Authenticator authenticator)
    {
        if (!authenticator.TokensRequired)
        {
            await ErrorAsync(http, 404, "UNSUPPORTED", "this server does not check credentials: no token is needed");
            return;
        }

        Caller caller;
        try
        {
            caller = authenticator.Authenticate(http);
        }
        catch (NotAuthenticatedException e)
        {
            await LoginNeededAsync(http, e.Message);
            return;
        }
        catch (TooManyAttemptsException e)
        {
            http.Response.Headers.RetryAfter = e.RetryAfterHeader;
            await ErrorAsync(http, 429, "TOOMANYREQUESTS", e.Message);
            return;
        }

        if (caller.IsAnonymous && !authenticator.AnonymousAllowed)
        {
            await LoginNeededAsync(http, "log in with a token's secret as the password");
            return;
        }

        var grants = new List<RegistryGrant>();
        foreach (var (repository, actions) in RequestedScopes(http.Request.Query["scope"]))
        {
            if (actions.Contains("push") && caller.Allows(AccessLevel.Write, repository))
            {
                grants.Add(new RegistryGrant(repository, Push: true));
            }
            else if ((actions.Contains("pull") || actions.Contains("push")) && caller.Allows(AccessLevel.Read, repository))
            {
                grants.Add(new RegistryGrant(repository, Push: false));
            }
        }

        var token = authenticator.IssueRegistryToken(caller, grants);
        await http.Response.WriteAsJsonAsync(new
        {
            token,
            access_token = token,
            expires_in = (int)authenticator.RegistryTokenLifetime.TotalSeconds,
            issued_at = DateTimeOffset.UtcNow.ToString("o", System.Globalization.CultureInfo.InvariantCulture),
        });
    }

    // "repository:team/app:pull,push", perhaps several in one parameter separated by spaces. Other
    // resource types (registry:catalog:*) and names that are not namespaces are ignored: nothing
    // is granted for them.
    private static IEnumerable<(string Repository, HashSet<string> Actions)> RequestedScopes(IEnumerable<string?> values)
    {
        foreach (var scope in values.SelectMany(v => (v ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            var parts = scope.Split(':');
            if (parts is not ["repository", var name, var actions] || !NamespaceName.IsValid(name))
            {
                continue;
            }

            yield return (name, actions.Split(',').ToHashSet(StringComparer.Ordinal));
        }
    }

    private static Task LoginNeededAsync(HttpContext http, string message)
    {
        http.Response.Headers.WWWAuthenticate = $"Basic realm=\"{Service}\"";
        return ErrorAsync(http, 401, "UNAUTHORIZED", message);
    }

    private static Task ErrorAsync(HttpContext http, int status, string code, string message)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(new { errors = new[] { new { code, message } } });
    }
}
