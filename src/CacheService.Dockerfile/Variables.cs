using System.Text;
using System.Text.RegularExpressions;

namespace CacheService.Dockerfile;

/// <summary>
/// Dockerfile variable substitution as BuildKit applies it to FROM, COPY, ADD, ENV, ARG,
/// WORKDIR and the like: <c>$NAME</c>, <c>${NAME}</c>, <c>${NAME:-word}</c>, <c>${NAME-word}</c>,
/// <c>${NAME:+word}</c>, <c>${NAME+word}</c>; single quotes keep text literal, double quotes are
/// removed, the escape character protects the next character.
/// </summary>
public static partial class Variables
{
    /// <summary>Longest result of one expansion, in characters (as long as an instruction may be).</summary>
    public const int MaxExpansionLength = 65536;

    /// <summary>Deepest nesting of <c>${...}</c> inside one another.</summary>
    public const int MaxNesting = 64;

    /// <summary>Expands one word (quotes removed), looking names up in <paramref name="lookup"/>.</summary>
    /// <exception cref="DockerfileSyntaxException">A malformed substitution, or a result past the limits above.</exception>
    public static string Expand(string word, Func<string, string?> lookup, char escape = '\\')
    {
        ArgumentNullException.ThrowIfNull(word);
        ArgumentNullException.ThrowIfNull(lookup);
        var result = new StringBuilder();
        var quote = '\0';
        for (var pos = 0; pos < word.Length; pos++)
        {
            var c = word[pos];
            if (quote == '\'')
            {
                if (c == '\'')
                {
                    quote = '\0';
                }
                else
                {
                    result.Append(c);
                }
            }
            else if (c == escape && pos + 1 < word.Length)
            {
                result.Append(word[++pos]);
            }
            else if (c == '"' || (c == '\'' && quote == '\0'))
            {
                quote = quote == c ? '\0' : c;
            }
            else if (c == '$' && pos + 1 < word.Length)
            {
                pos = Substitute(word, pos, lookup, escape, result);
            }
            else
            {
                result.Append(c);
            }

            if (result.Length > MaxExpansionLength)
            {
                throw new DockerfileSyntaxException($"a variable expansion is longer than {MaxExpansionLength} characters", 0);
            }
        }

        return result.ToString();
    }

    /// <summary>
    /// The names <paramref name="text"/> refers to with <c>$NAME</c> or <c>${NAME...}</c>. It
    /// errs on the side of listing too many (a reference inside single quotes counts too), which
    /// can only cost a needless miss, never a wrong hit.
    /// </summary>
    public static IReadOnlySet<string> ReferencedNames(string text) =>
        Reference().Matches(text).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);

    // Handles the '$' at word[pos]; returns the position of the last character consumed.
    private static int Substitute(string word, int pos, Func<string, string?> lookup, char escape, StringBuilder result)
    {
        if (word[pos + 1] != '{')
        {
            var end = pos + 1;
            while (end < word.Length && (char.IsAsciiLetterOrDigit(word[end]) || word[end] == '_'))
            {
                end++;
            }

            if (end == pos + 1)
            {
                result.Append('$');
                return pos;
            }

            result.Append(lookup(word[(pos + 1)..end]) ?? string.Empty);
            return end - 1;
        }

        var close = MatchingBrace(word, pos + 2);
        var inner = word[(pos + 2)..close];
        var op = inner.IndexOfAny([':', '-', '+']);
        var name = op < 0 ? inner : inner[..op];
        var value = lookup(name);
        if (op < 0)
        {
            result.Append(value ?? string.Empty);
            return close;
        }

        var colon = inner[op] == ':';
        var kind = colon ? (op + 1 < inner.Length ? inner[op + 1] : '\0') : inner[op];
        if (kind is not ('-' or '+'))
        {
            throw new DockerfileSyntaxException($"unsupported modifier in ${{{inner}}}", 0);
        }

        var alternative = Expand(inner[(op + (colon ? 2 : 1))..], lookup, escape);
        var set = colon ? !string.IsNullOrEmpty(value) : value is not null;
        result.Append(kind == '-' ? (set ? value : alternative) : (set ? alternative : string.Empty));
        return close;
    }

    private static int MatchingBrace(string word, int start)
    {
        var depth = 1;
        for (var i = start; i < word.Length; i++)
        {
            depth += word[i] switch { '{' => 1, '}' => -1, _ => 0 };
            if (depth == 0)
            {
                return i;
            }

            if (depth > MaxNesting)
            {
                throw new DockerfileSyntaxException($"variables nest deeper than {MaxNesting} levels", 0);
            }
        }

        throw new DockerfileSyntaxException($"missing '}}' in {word}", 0);
    }

    [GeneratedRegex(@"\$\{?([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex Reference();
}
