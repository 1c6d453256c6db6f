using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace CacheService.Core.Access;

/// <summary>
/// A named token: the SHA-256 of its secret (the secret itself is shown once, when it is made, and
/// kept nowhere) and its scopes. Secrets are 256 random bits, so a plain hash is as good as a slow
/// one: there is nothing to guess.
/// </summary>
public sealed record AccessToken(string Name, string SecretSha256, IReadOnlyList<Scope> Scopes, DateTimeOffset Created)
{
    /// <summary>What every secret starts with, so that a leaked one is easy to recognise and scan for.</summary>
    public const string SecretPrefix = "lcs_";

    /// <summary>A new token with a fresh secret; returns both. The secret is not kept in the token.</summary>
    public static (AccessToken Token, string Secret) Create(string name, IReadOnlyList<Scope> scopes, DateTimeOffset now)
    {
        ValidateName(name);
        ArgumentNullException.ThrowIfNull(scopes);
        if (scopes.Count == 0)
        {
            throw new InvalidFieldException("scope", "a token needs at least one scope");
        }

        var secret = SecretPrefix + Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(32));
        return (new AccessToken(name, Hash(secret), scopes, now), secret);
    }

    /// <summary>The stored form of a secret: lower-case hex SHA-256 of its UTF-8 bytes.</summary>
    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret ?? string.Empty)));

    /// <summary>True when <paramref name="secret"/> is this token's, compared in constant time.</summary>
    public bool Matches(string secret) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(secret)), Encoding.ASCII.GetBytes(SecretSha256));

    /// <summary>True when one of the scopes allows <paramref name="level"/> on <paramref name="ns"/>.</summary>
    public bool Allows(AccessLevel level, string ns) => Scopes.Any(s => s.Allows(level, ns));

    /// <summary>Throws unless <paramref name="name"/> is 1 to 64 of <c>[A-Za-z0-9._-]</c>.</summary>
    public static void ValidateName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 64 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            throw new InvalidFieldException("name", "must be 1 to 64 letters, digits, '.', '_' or '-'");
        }
    }
}
