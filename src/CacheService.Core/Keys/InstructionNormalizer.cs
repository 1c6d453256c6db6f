using System.Text;
using System.Text.Json;

namespace CacheService.Core.Keys;

/// <summary>
/// Brings one Dockerfile instruction to the canonical text that enters its cache key
/// (docs/cache-key.md, "Normalized instruction"). Reformatting that the command never sees maps
/// to the same text; anything that could change what the step does is kept.
/// </summary>
/// <remarks>
/// The function is idempotent, so a parser may hand it either raw or already-normalized text.
/// Rules, in order: line endings become LF; continuation lines (escape character, optional
/// blanks, end of line) are joined with nothing in between, and blank or comment lines inside a
/// continuation are dropped; the keyword is upper-cased; leading <c>--flag</c> words are sorted;
/// a JSON array of strings (exec form) is re-encoded canonically; otherwise (shell form) runs of
/// blanks outside quotes become one space and leading and trailing blanks go. Heredoc bodies
/// (lines after the first, for RUN, COPY and ADD with a &lt;&lt;WORD marker) are kept exactly.
/// </remarks>
public static class InstructionNormalizer
{
    /// <summary>Keywords that add a filesystem layer; the others change only the image config.</summary>
    public static readonly IReadOnlySet<string> LayerKeywords = new HashSet<string>(StringComparer.Ordinal) { "RUN", "COPY", "ADD" };

    /// <summary>The canonical text of <paramref name="instruction"/>.</summary>
    /// <param name="instruction">One instruction as written, continuation lines included.</param>
    /// <param name="escape">The Dockerfile's escape character (<c>\</c> unless a directive says <c>`</c>).</param>
    public static string Normalize(string instruction, char escape = '\\')
    {
        ArgumentNullException.ThrowIfNull(instruction);
        var lines = instruction.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var (logical, consumed) = JoinContinuations(lines, escape);
        var words = SplitWords(logical, escape, out var restStart);
        if (words.Count == 0)
        {
            throw new InvalidFieldException("instruction", "is empty");
        }

        var keyword = words[0].ToUpperInvariant();
        var flagCount = 0;
        while (flagCount + 1 < words.Count && words[flagCount + 1].StartsWith("--", StringComparison.Ordinal))
        {
            flagCount++;
        }

        var flags = words.GetRange(1, flagCount);
        flags.Sort(StringComparer.Ordinal);
        var rest = flagCount + 1 < words.Count ? logical[restStart[flagCount + 1]..] : string.Empty;

        var text = new StringBuilder(keyword);
        foreach (var flag in flags)
        {
            text.Append(' ').Append(flag);
        }

        var body = TryCanonicalJsonArray(rest) ?? FoldBlanks(rest, escape);
        if (body.Length > 0)
        {
            text.Append(' ').Append(body);
        }

        var heredocLines = lines.AsSpan(consumed);
        if (LayerKeywords.Contains(keyword) && heredocLines.Length > 0 && body.Contains("<<", StringComparison.Ordinal))
        {
            foreach (var line in heredocLines)
            {
                text.Append('\n').Append(line);
            }
        }

        return text.ToString();
    }

    /// <summary>True when <paramref name="normalizedInstruction"/> adds a filesystem layer.</summary>
    public static bool IsLayerStep(string normalizedInstruction) => LayerKeywords.Contains(Keyword(normalizedInstruction));

    /// <summary>The keyword of <paramref name="normalizedInstruction"/>, upper case.</summary>
    public static string Keyword(string normalizedInstruction)
    {
        ArgumentNullException.ThrowIfNull(normalizedInstruction);
        var end = normalizedInstruction.AsSpan().IndexOfAny(' ', '\n');
        return end < 0 ? normalizedInstruction : normalizedInstruction[..end];
    }

    // Joins the physical lines of the first logical line. Returns it and how many physical lines
    // it used; the remaining lines are heredoc bodies (or trailing blank lines).
    private static (string Logical, int Consumed) JoinContinuations(string[] lines, char escape)
    {
        var joined = new StringBuilder();
        var i = 0;
        var continuing = false;
        for (; i < lines.Length; i++)
        {
            var line = lines[i];
            if (continuing && IsBlankOrComment(line))
            {
                continue;
            }

            var trimmed = line.TrimEnd(' ', '\t');
            if (trimmed.Length > 0 && trimmed[^1] == escape && !IsEscapedEscape(trimmed, escape))
            {
                joined.Append(trimmed, 0, trimmed.Length - 1);
                continuing = true;
                continue;
            }

            joined.Append(line);
            i++;
            break;
        }

        return (joined.ToString(), i);
    }

    // "\\" at the end of a line is an escaped escape character, not a continuation.
    private static bool IsEscapedEscape(string trimmed, char escape)
    {
        var run = 0;
        for (var j = trimmed.Length - 1; j >= 0 && trimmed[j] == escape; j--)
        {
            run++;
        }

        return run % 2 == 0;
    }

    private static bool IsBlankOrComment(string line)
    {
        var t = line.TrimStart(' ', '\t');
        return t.Length == 0 || t[0] == '#';
    }

    // Splits on blanks outside quotes; records where each word starts in the text.
    private static List<string> SplitWords(string text, char escape, out List<int> starts)
    {
        var words = new List<string>();
        starts = [];
        var i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && text[i] is ' ' or '\t')
            {
                i++;
            }

            if (i == text.Length)
            {
                break;
            }

            var start = i;
            i = SkipWord(text, i, escape);
            words.Add(text[start..i]);
            starts.Add(start);
        }

        return words;
    }

    // Returns the index after the word starting at i; quotes and escapes keep blanks inside a word.
    private static int SkipWord(string text, int i, char escape)
    {
        char quote = '\0';
        while (i < text.Length)
        {
            var c = text[i];
            if (quote == '\0' && c is ' ' or '\t')
            {
                break;
            }

            if (c == escape && quote != '\'' && i + 1 < text.Length)
            {
                i += 2;
                continue;
            }

            if (quote == '\0' && c is '\'' or '"')
            {
                quote = c;
            }
            else if (c == quote)
            {
                quote = '\0';
            }

            i++;
        }

        return i;
    }

    private static string FoldBlanks(string text, char escape)
    {
        var words = SplitWords(text, escape, out _);
        return string.Join(' ', words);
    }

    // Exec form: a JSON array of strings. Re-encoded as ["a","b"] with only '"', '\' and control
    // characters escaped, so spacing inside the brackets does not matter but every string byte does.
    private static string? TryCanonicalJsonArray(string text)
    {
        var t = text.Trim(' ', '\t');
        if (t.Length < 2 || t[0] != '[' || t[^1] != ']')
        {
            return null;
        }

        List<string>? items;
        try
        {
            items = JsonSerializer.Deserialize<List<string>>(t);
        }
        catch (JsonException)
        {
            return null;
        }

        if (items is null || items.Contains(null!))
        {
            return null;
        }

        var json = new StringBuilder("[");
        for (var k = 0; k < items.Count; k++)
        {
            if (k > 0)
            {
                json.Append(',');
            }

            AppendJsonString(json, items[k]);
        }

        return json.Append(']').ToString();
    }

    private static void AppendJsonString(StringBuilder json, string value)
    {
        json.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case < ' ': json.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture)); break;
                default: json.Append(c); break;
            }
        }

        json.Append('"');
    }
}
