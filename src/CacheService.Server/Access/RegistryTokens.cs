using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using CacheService.Core.Access;

namespace CacheService.Server.Access;

/// <summary>
/// The bearer tokens of Docker's token flow: after a client proves a secret at
/// <c>/auth/token</c>, it gets one of these, naming the token it proved and the repositories and
/// actions it was granted, until it expires. Signed with a key every replica shares, so any
/// replica accepts what another issued. A bearer token never outlives its token: it is honoured
/// only while the token it names is in the tokens file, and only within that token's scopes.
/// </summary>
internal sealed class RegistryTokens(byte[] key, TimeProvider time)
{
    private const string Prefix = "lcr.";

    /// <summary>A bearer token for <paramref name="tokenName"/> (null: the anonymous caller), good for <paramref name="lifetime"/>.</summary>
    public string Issue(string? tokenName, IReadOnlyList<RegistryGrant> grants, TimeSpan lifetime)
    {
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Payload(
            tokenName,
            [.. grants.Select(g => $"{(g.Push ? "push" : "pull")}:{g.Repository}")],
            time.GetUtcNow().Add(lifetime).ToUnixTimeSeconds()));
        return Prefix + Base64Url.EncodeToString(payload) + "." + Base64Url.EncodeToString(HMACSHA256.HashData(key, payload));
    }

    /// <summary>True when <paramref name="text"/> looks like one of these tokens (whether or not it is valid).</summary>
    public static bool IsRegistryToken(string text) => text.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>
    /// The token name (null: anonymous) and grants of a bearer token this server's key signed, and
    /// whether it has expired; null for anything it did not sign.
    /// </summary>
    public (string? TokenName, Func<AccessLevel, string, bool> Narrowing, bool Expired)? Verify(string text)
    {
        var dot = text.IndexOf('.', Prefix.Length);
        if (!IsRegistryToken(text) || dot < 0
            || Decode(text[Prefix.Length..dot]) is not { } payload
            || Decode(text[(dot + 1)..]) is not { } mac
            || !CryptographicOperations.FixedTimeEquals(mac, HMACSHA256.HashData(key, payload)))
        {
            return null;
        }

        var claims = JsonSerializer.Deserialize<Payload>(payload);
        if (claims is null)
        {
            return null;
        }

        var granted = claims.Grants.ToHashSet(StringComparer.Ordinal);
        return (claims.Name, (level, ns) => level switch
        {
            AccessLevel.Read => granted.Contains($"pull:{ns}") || granted.Contains($"push:{ns}"),
            AccessLevel.Write => granted.Contains($"push:{ns}"),
            _ => false,
        }, DateTimeOffset.FromUnixTimeSeconds(claims.Expires) <= time.GetUtcNow());
    }

    private static byte[]? Decode(string text) => Base64Url.IsValid(text) ? Base64Url.DecodeFromChars(text) : null;

    private sealed record Payload(
        [property: System.Text.Json.Serialization.JsonPropertyName("n")] string? Name,
        [property: System.Text.Json.Serialization.JsonPropertyName("g")] string[] Grants,
        [property: System.Text.Json.Serialization.JsonPropertyName("e")] long Expires);
}

/// <summary>One repository a registry bearer token was issued for: pull, or pull and push.</summary>
internal readonly record struct RegistryGrant(string Repository, bool Push);
