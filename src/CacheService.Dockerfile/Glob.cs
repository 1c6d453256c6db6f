using System.Text;
using System.Text.RegularExpressions;
using CacheService.Core;

namespace CacheService.Dockerfile;

/// <summary>
/// Path patterns as Docker matches them in .dockerignore and COPY sources: <c>*</c> and
/// <c>?</c> stay within one path segment, <c>**</c> spans any number of segments, <c>[...]</c>
/// is a character class (<c>^</c> or <c>!</c> negates), a backslash escapes.
/// </summary>
internal static class Glob
{
    /// <summary>
    /// <paramref name="pattern"/> compiled to a matcher that runs in time linear in the name
    /// (.NET's non-backtracking engine: no pattern can make a match take exponential time).
    /// </summary>
    /// <exception cref="InvalidFieldException">A pattern Docker would refuse too, such as <c>[z-a]</c> or <c>[]</c>.</exception>
    public static Regex Compile(string pattern, string field)
    {
        try
        {
            return new Regex(ToRegex(pattern), RegexOptions.CultureInvariant | RegexOptions.Singleline | RegexOptions.NonBacktracking);
        }
        catch (ArgumentException e)
        {
            throw new InvalidFieldException(field, $"'{pattern}' is not a valid pattern ({e.Message})");
        }
    }

    /// <summary>An anchored regular expression for <paramref name="pattern"/>, a cleaned slash path.</summary>
    public static string ToRegex(string pattern)
    {
        var regex = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    i++;
                    if (i + 1 < pattern.Length && pattern[i + 1] == '/')
                    {
                        i++;
                        regex.Append("(.*/)?"); // "**/" : zero or more directories
                    }
                    else
                    {
                        regex.Append(".*"); // "**" at the end or before other characters
                    }

                    break;
                case '*':
                    regex.Append("[^/]*");
                    break;
                case '?':
                    regex.Append("[^/]");
                    break;
                case '[':
                    var close = pattern.IndexOf(']', i + 1);
                    if (close < 0)
                    {
                        regex.Append(@"\[");
                        break;
                    }

                    var set = pattern[(i + 1)..close];
                    regex.Append('[').Append(set.StartsWith('^') || set.StartsWith('!') ? "^" + Regex.Escape(set[1..]).Replace(@"\-", "-", StringComparison.Ordinal) : Regex.Escape(set).Replace(@"\-", "-", StringComparison.Ordinal)).Append(']');
                    i = close;
                    break;
                case '\\' when i + 1 < pattern.Length:
                    regex.Append(Regex.Escape(pattern[++i].ToString()));
                    break;
                default:
                    regex.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return regex.Append('$').ToString();
    }
}
