namespace CacheService.Core.Access;

/// <summary>
/// Who made a request, and what they may do: a token's scopes (perhaps narrowed further, as a
/// registry bearer token narrows them to the repositories it was issued for), or the anonymous
/// caller's. Transports ask it before they touch a namespace; it remembers that it was asked, so a
/// transport can tell a handler that forgot to.
/// </summary>
public sealed class Caller
{
    private readonly IReadOnlyList<Scope> _scopes;
    private readonly Func<AccessLevel, string, bool> _narrowing;

    private Caller(string? name, IReadOnlyList<Scope> scopes, Func<AccessLevel, string, bool>? narrowing)
    {
        Name = name;
        _scopes = scopes;
        _narrowing = narrowing ?? ((_, _) => true);
    }

    /// <summary>The token's name; null for an anonymous caller.</summary>
    public string? Name { get; }

    /// <summary>True when the request carried no credentials.</summary>
    public bool IsAnonymous => Name is null;

    /// <summary>True once an access check was made for this request.</summary>
    public bool WasChecked { get; private set; }

    /// <summary>How logs and errors name the caller.</summary>
    public string DisplayName => Name ?? "anonymous";

    /// <summary>A caller without credentials, with the scopes the server grants to anyone, limited further by <paramref name="narrowing"/> when given.</summary>
    public static Caller Anonymous(IReadOnlyList<Scope> scopes, Func<AccessLevel, string, bool>? narrowing = null) => new(null, scopes, narrowing);

    /// <summary>The holder of <paramref name="token"/>, limited further by <paramref name="narrowing"/> when given.</summary>
    public static Caller ForToken(AccessToken token, Func<AccessLevel, string, bool>? narrowing = null)
    {
        ArgumentNullException.ThrowIfNull(token);
        return new Caller(token.Name, token.Scopes, narrowing);
    }

    /// <summary>True when the caller may act at <paramref name="level"/> on namespace <paramref name="ns"/>.</summary>
    public bool Allows(AccessLevel level, string ns)
    {
        WasChecked = true;
        return _scopes.Any(s => s.Allows(level, ns)) && _narrowing(level, ns);
    }

    /// <summary>Throws unless the caller may act at <paramref name="level"/> on <paramref name="ns"/>.</summary>
    /// <exception cref="NotAuthenticatedException">An anonymous caller, or credentials narrowed below what they allow: other credentials might do.</exception>
    /// <exception cref="AccessDeniedException">A known caller without the scope; the message names it.</exception>
    public void Require(AccessLevel level, string ns)
    {
        if (Allows(level, ns))
        {
            return;
        }

        var scope = level == AccessLevel.Admin ? "admin" : $"{level.ToString().ToLowerInvariant()}:{ns}";
        if (IsAnonymous || _scopes.Any(s => s.Allows(level, ns)))
        {
            throw new NotAuthenticatedException($"this needs credentials with scope {scope}", (level, ns));
        }

        throw new AccessDeniedException(DisplayName, scope);
    }

    /// <summary>Throws unless the caller has some scope: for requests that touch no namespace.</summary>
    public void RequireAnyScope()
    {
        WasChecked = true;
        if (_scopes.Count == 0)
        {
            throw new NotAuthenticatedException("this needs a token; pass one as 'authorization: Bearer <secret>'");
        }
    }
}
