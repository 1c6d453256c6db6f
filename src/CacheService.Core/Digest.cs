using System.Security.Cryptography;

namespace CacheService.Core;

/// <summary>
/// A content address, <c>sha256:&lt;64 lower-case hex&gt;</c>. Layer digests, diff ids, cache keys
/// and chain states all take this form.
/// </summary>
public readonly record struct Digest
{
    /// <summary>The only algorithm accepted.</summary>
    public const string Prefix = "sha256:";

    private Digest(string value) => Value = value;

    /// <summary>The whole digest, <c>sha256:&lt;hex&gt;</c>.</summary>
    public string Value { get; }

    /// <summary>The 64 hex characters after the prefix.</summary>
    public string Hex => Value[Prefix.Length..];

    /// <summary>Parses a digest or throws <see cref="InvalidFieldException"/> naming <paramref name="field"/>.</summary>
    public static Digest Parse(string? text, string field) =>
        TryParse(text, out var digest)
            ? digest
            : throw new InvalidFieldException(field, "must be sha256:<64 lower-case hex>");

    /// <summary>True when <paramref name="text"/> is exactly <c>sha256:</c> and 64 lower-case hex digits.</summary>
    public static bool TryParse(string? text, out Digest digest)
    {
        digest = default;
        if (text is null || text.Length != Prefix.Length + 64 || !text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        foreach (var c in text.AsSpan(Prefix.Length))
        {
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }

        digest = new Digest(text);
        return true;
    }

    /// <summary>The digest of a SHA-256 hash value.</summary>
    public static Digest FromHash(ReadOnlySpan<byte> sha256) =>
        new(Prefix + Convert.ToHexStringLower(sha256));

    /// <summary>The digest of some bytes.</summary>
    public static Digest Of(ReadOnlySpan<byte> content) => FromHash(SHA256.HashData(content));

    /// <inheritdoc />
    public override string ToString() => Value ?? string.Empty;
}
