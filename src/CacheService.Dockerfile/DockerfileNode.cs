using System.Globalization;
using System.Text;

namespace CacheService.Dockerfile;

/// <summary>One instruction of a parsed Dockerfile, shaped as BuildKit's parser shapes it.</summary>
/// <param name="Keyword">Lower-case keyword, e.g. <c>run</c>.</param>
/// <param name="Flags">Leading <c>--flag</c> words, quotes removed.</param>
/// <param name="Args">The arguments as the keyword's rule splits them (see <see cref="DockerfileParser"/>).</param>
/// <param name="Json">True when the arguments came from a JSON array (exec form).</param>
/// <param name="Original">The instruction as one logical line, continuations joined.</param>
/// <param name="StartLine">First line, 1-based.</param>
/// <param name="EndLine">Last line, 1-based.</param>
/// <param name="Child">For ONBUILD: the instruction it carries.</param>
/// <param name="Heredocs">For RUN, COPY and ADD: the heredoc bodies that follow the instruction.</param>
public sealed record DockerfileNode(
    string Keyword,
    IReadOnlyList<string> Flags,
    IReadOnlyList<string> Args,
    bool Json,
    string Original,
    int StartLine,
    int EndLine,
    DockerfileNode? Child = null,
    IReadOnlyList<Heredoc>? Heredocs = null)
{
    /// <summary>
    /// The instruction as the cache key reads it: the logical line, then each heredoc's body and
    /// terminator on lines of their own (kept exactly by the normalizer).
    /// </summary>
    public string KeyText =>
        Heredocs is null or [] ? Original : Original + string.Concat(Heredocs.Select(h => "\n" + h.Content + h.Name));

    /// <summary>
    /// The node as BuildKit's parser tests print it: <c>(keyword ["--flag"] "arg" ...)</c>, with
    /// strings quoted the way Go's strconv.Quote does.
    /// </summary>
    public string Dump()
    {
        var text = new StringBuilder("(").Append(Keyword);
        if (Flags.Count > 0)
        {
            text.Append(" [").AppendJoin(' ', Flags.Select(GoQuote)).Append(']');
        }

        if (Child is not null)
        {
            text.Append(' ').Append(Child.Dump());
        }

        foreach (var arg in Args)
        {
            text.Append(' ').Append(GoQuote(arg));
        }

        return text.Append(')').ToString();
    }

    /// <summary>Quotes like Go's strconv.Quote: printable characters as they are, the rest escaped.</summary>
    public static string GoQuote(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = new StringBuilder("\"");
        foreach (var rune in value.EnumerateRunes())
        {
            switch (rune.Value)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\a': text.Append("\\a"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\v': text.Append("\\v"); break;
                case < 0x20 or 0x7F: text.Append("\\x").Append(rune.Value.ToString("x2", CultureInfo.InvariantCulture)); break;
                default:
                    if (IsPrintable(rune))
                    {
                        text.Append(rune.ToString());
                    }
                    else if (rune.Value <= 0xFFFF)
                    {
                        text.Append("\\u").Append(rune.Value.ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        text.Append("\\U").Append(rune.Value.ToString("x8", CultureInfo.InvariantCulture));
                    }

                    break;
            }
        }

        return text.Append('"').ToString();
    }

    private static bool IsPrintable(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
            or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator => false,
        UnicodeCategory.SpaceSeparator => rune.Value == ' ',
        _ => true,
    };
}

/// <summary>A heredoc body of a RUN, COPY or ADD.</summary>
/// <param name="Name">The terminator word.</param>
/// <param name="Content">The body, each line ending in a newline; leading tabs removed for <c>&lt;&lt;-</c>.</param>
/// <param name="Expand">False when the name was quoted: variables in the body are not expanded.</param>
/// <param name="Chomp">True for <c>&lt;&lt;-</c>.</param>
public sealed record Heredoc(string Name, string Content, bool Expand, bool Chomp);
