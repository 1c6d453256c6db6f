namespace CacheService.Core;

/// <summary>
/// Namespace names isolate tenants: keys, blobs, budgets and stats are per namespace.
/// A name is 1 to 4 segments of <c>[a-z0-9][a-z0-9._-]*</c> joined by <c>/</c>, at most 128
/// characters, e.g. <c>team/main</c> or <c>team/pr-42</c>.
/// </summary>
public static class NamespaceName
{
    /// <summary>Longest accepted name, in characters.</summary>
    public const int MaxLength = 128;

    /// <summary>Most segments a name may have.</summary>
    public const int MaxSegments = 4;

    // Two segments no name may have in a row (see Validate).
    private static readonly (string First, string Second) ReservedPair = ("blobs", "sha256");

    /// <summary>Returns <paramref name="name"/> if valid, else throws naming <paramref name="field"/>.</summary>
    public static string Validate(string? name, string field)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new InvalidFieldException(field, "is required");
        }

        if (name.Length > MaxLength)
        {
            throw new InvalidFieldException(field, $"is longer than {MaxLength} characters");
        }

        var segments = name.Split('/');
        if (segments.Length > MaxSegments)
        {
            throw new InvalidFieldException(field, $"has more than {MaxSegments} segments");
        }

        foreach (var segment in segments)
        {
            if (!IsValidSegment(segment))
            {
                throw new InvalidFieldException(
                    field, "segments must match [a-z0-9][a-z0-9._-]* and be joined by '/'");
            }
        }

        for (var i = 1; i < segments.Length; i++)
        {
            if (segments[i - 1] == ReservedPair.First && segments[i] == ReservedPair.Second)
            {
                // Blobs are stored as <namespace>/blobs/sha256/<hex>: namespace "x/blobs/sha256/<hex>"
                // would sit where namespace x keeps blob <hex>, and block it for good.
                throw new InvalidFieldException(field, "may not contain the segments blobs/sha256, which the blob layout reserves");
            }
        }

        return name;
    }

    /// <summary>True when <paramref name="name"/> is a valid namespace name.</summary>
    public static bool IsValid(string? name)
    {
        try
        {
            Validate(name, "name");
            return true;
        }
        catch (InvalidFieldException)
        {
            return false;
        }
    }

    private static bool IsValidSegment(string segment)
    {
        if (segment.Length == 0 || !IsLowerAlphanumeric(segment[0]))
        {
            return false;
        }

        foreach (var c in segment)
        {
            if (!IsLowerAlphanumeric(c) && c is not ('.' or '_' or '-'))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsLowerAlphanumeric(char c) => char.IsAsciiDigit(c) || c is >= 'a' and <= 'z';
}
