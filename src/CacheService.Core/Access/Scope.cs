namespace CacheService.Core.Access;

/// <summary>What a scope lets its holder do.</summary>
public enum AccessLevel
{
    /// <summary>Look up, download, list and read stats.</summary>
    Read,

    /// <summary>Upload, commit, tag and delete entries; implies read.</summary>
    Write,

    /// <summary>Everything, in every namespace.</summary>
    Admin,
}

/// <summary>
/// One grant of a token: <c>read:PATTERN</c>, <c>write:PATTERN</c> or <c>admin</c>. A pattern is a
/// namespace name, or a prefix ending in <c>/*</c> that covers every namespace below it
/// (<c>team/*</c> covers <c>team/main</c> and <c>team/pr/42</c>, not <c>team</c>), or <c>*</c> for all.
/// </summary>
public sealed record Scope(AccessLevel Level, string Pattern)
{
    /// <summary>Parses a scope as written in a tokens file or on the command line.</summary>
    /// <exception cref="InvalidFieldException">Not one of the three forms, or a pattern no namespace can match.</exception>
    public static Scope Parse(string? text, string field = "scope")
    {
        if (text == "admin")
        {
            return new Scope(AccessLevel.Admin, "*");
        }

        var colon = text?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        var level = colon < 0 ? null : text![..colon] switch
        {
            "read" => (AccessLevel?)AccessLevel.Read,
            "write" => AccessLevel.Write,
            _ => null,
        };
        if (level is null)
        {
            throw new InvalidFieldException(field, $"'{text}' is not read:PATTERN, write:PATTERN or admin");
        }

        var pattern = text![(colon + 1)..];
        if (pattern != "*")
        {
            NamespaceName.Validate(pattern.EndsWith("/*", StringComparison.Ordinal) ? pattern[..^2] : pattern, field);
        }

        return new Scope(level.Value, pattern);
    }

    /// <summary>True when this scope allows <paramref name="level"/> on namespace <paramref name="ns"/>.</summary>
    public bool Allows(AccessLevel level, string ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        if (Level == AccessLevel.Admin)
        {
            return true;
        }

        if (level == AccessLevel.Admin || (level == AccessLevel.Write && Level != AccessLevel.Write))
        {
            return false;
        }

        return Pattern == "*"
            || Pattern == ns
            || (Pattern.EndsWith("/*", StringComparison.Ordinal) && ns.StartsWith(Pattern[..^1], StringComparison.Ordinal));
    }

    /// <inheritdoc />
    public override string ToString() => Level == AccessLevel.Admin ? "admin" : $"{Level.ToString().ToLowerInvariant()}:{Pattern}";
}
