// Over 300 lines on purpose: one grammar kept in one file, in the order of BuildKit's parser.go (directives,
// continuations, heredocs, the per-keyword split), so the two read side by side against the corpus.
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace CacheService.Dockerfile;

/// <summary>A Dockerfile parsed into instructions, with its escape character.</summary>
public sealed record ParsedDockerfile(IReadOnlyList<DockerfileNode> Instructions, char Escape, IReadOnlyList<string> Warnings);

/// <summary>A Dockerfile that cannot be parsed; <see cref="Line"/> is 1-based, 0 when it concerns the whole file.</summary>
public sealed class DockerfileSyntaxException(string message, int line) : Exception(line > 0 ? $"line {line}: {message}" : message)
{
    /// <summary>Where the problem is, 1-based; 0 for the whole file.</summary>
    public int Line { get; } = line;
}

/// <summary>
/// Reads a Dockerfile into instructions exactly as BuildKit's parser does, so that the keys
/// computed from its output agree with what users of BuildKit expect. The BuildKit parser test
/// corpus (testdata/buildkit-dockerfile-parser) pins the behaviour.
/// </summary>
/// <remarks>
/// <para>Lines: parser directives (<c># escape=`</c>, <c># syntax=...</c>) are read only before
/// anything else; whole-line comments and blank lines are skipped. A line ending in the escape
/// character (blanks after it allowed, an escaped escape excepted) continues on the next one; the
/// continuation keeps the next line's leading blanks, and comment or blank lines inside it are
/// dropped (blank ones with a warning).</para>
/// <para>Instructions: the keyword is lower-cased, leading <c>--flag</c> words are split off
/// (<c>--</c> ends them), and the rest is split by the keyword's rule: JSON array or one string
/// (RUN, CMD, ENTRYPOINT, SHELL), JSON array or words (COPY, ADD, VOLUME), name/value pairs
/// (ENV, LABEL, ARG), words (FROM, EXPOSE), one string (USER, WORKDIR, MAINTAINER,
/// STOPSIGNAL), type plus command (HEALTHCHECK), a nested instruction (ONBUILD). Unknown
/// keywords keep no arguments.</para>
/// </remarks>
public static partial class DockerfileParser
{
    /// <summary>Longest Dockerfile read, in characters: every later bound (lines, continuations, instructions) follows from it.</summary>
    public const int MaxLength = 1 << 20;

    /// <summary>Parses <paramref name="text"/>; throws <see cref="DockerfileSyntaxException"/>.</summary>
    public static ParsedDockerfile Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length > MaxLength)
        {
            throw new DockerfileSyntaxException($"the Dockerfile is longer than {MaxLength} characters", 0);
        }

        if (text.StartsWith('\uFEFF'))
        {
            text = text[1..];
        }

        var lines = SplitLines(text);
        var escape = '\\';
        var directivesDone = false;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var nodes = new List<DockerfileNode>();
        var warnings = new List<string>();

        for (var i = 0; i < lines.Count; i++)
        {
            var first = lines[i].TrimStart();
            if (!directivesDone)
            {
                directivesDone = !TryDirective(first, seen, ref escape, i + 1);
            }

            if (IsComment(first))
            {
                continue;
            }

            var startLine = i + 1;
            var (line, continues) = TrimContinuation(first, escape);
            if (!continues && line.Length == 0)
            {
                continue;
            }

            // A StringBuilder: joining tens of thousands of continuation lines one string at a time is quadratic.
            var joined = new StringBuilder(line);
            var emptyContinuation = false;
            while (continues && i + 1 < lines.Count)
            {
                var next = lines[++i];
                if (IsComment(next.TrimStart()))
                {
                    continue;
                }

                if (next.Trim().Length == 0)
                {
                    emptyContinuation = true;
                    continue;
                }

                (var part, continues) = TrimContinuation(next, escape);
                joined.Append(part);
            }

            line = joined.ToString();

            if (emptyContinuation)
            {
                warnings.Add("Empty continuation line found in: " + line);
            }

            var node = ParseInstruction(line, escape, startLine, i + 1);
            if (node.Keyword is "run" or "copy" or "add")
            {
                node = ReadHeredocs(node, lines, ref i);
            }

            nodes.Add(node);
        }

        if (nodes.Count == 0)
        {
            throw new DockerfileSyntaxException("file with no instructions", 0);
        }

        return new ParsedDockerfile(nodes, escape, warnings);
    }

    private static List<string> SplitLines(string text)
    {
        var lines = text.Split('\n').Select(l => l.EndsWith('\r') ? l[..^1] : l).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return lines;
    }

    // True while the line is a parser directive; the first line that is not ends the directives.
    private static bool TryDirective(string line, HashSet<string> seen, ref char escape, int lineNumber)
    {
        var match = DirectivePattern().Match(line);
        if (!match.Success)
        {
            return false;
        }

        var name = match.Groups[1].Value.ToLowerInvariant();
        if (name is not ("escape" or "syntax" or "check"))
        {
            return false;
        }

        if (!seen.Add(name))
        {
            throw new DockerfileSyntaxException($"only one {name} parser directive can be used", lineNumber);
        }

        if (name == "escape")
        {
            var value = match.Groups[2].Value;
            escape = value switch
            {
                "`" => '`',
                "\\" => '\\',
                _ => throw new DockerfileSyntaxException($"invalid escape token '{value}' does not match ` or \\", lineNumber),
            };
        }

        return true;
    }

    // A RUN, COPY or ADD line may open heredocs (<<EOF, <<-EOF, <<"EOF"); their bodies follow
    // the instruction, each up to a line that is exactly its name (after leading tabs for <<-).
    private static DockerfileNode ReadHeredocs(DockerfileNode node, List<string> lines, ref int i)
    {
        var heredocs = new List<Heredoc>();
        foreach (var word in WhitespaceDelimited(node.Original.Trim()))
        {
            var marker = HeredocMarker().Match(word);
            var name = marker.Success ? marker.Groups[2].Value.Replace("\"", "", StringComparison.Ordinal).Replace("'", "", StringComparison.Ordinal) : "";
            if (name.Length == 0)
            {
                continue;
            }

            var chomp = marker.Groups[1].Value == "-";
            var content = new StringBuilder();
            var terminated = false;
            while (++i < lines.Count)
            {
                var body = chomp ? lines[i].TrimStart('\t') : lines[i];
                if (body == name)
                {
                    terminated = true;
                    break;
                }

                content.Append(body).Append('\n');
            }

            if (!terminated)
            {
                throw new DockerfileSyntaxException($"unterminated heredoc {name}", node.StartLine);
            }

            heredocs.Add(new Heredoc(name, content.ToString(), Expand: name.Length == marker.Groups[2].Value.Length, chomp));
        }

        return heredocs.Count == 0 ? node : node with { Heredocs = heredocs, EndLine = i + 1 };
    }

    private static bool IsComment(string trimmedLine) => trimmedLine.StartsWith('#');

    // Removes a trailing escape character (and blanks after it) that continues the line. An
    // even run of escape characters is escaped escapes, not a continuation.
    private static (string Line, bool Continues) TrimContinuation(string line, char escape)
    {
        var end = line.TrimEnd(' ', '\t');
        var run = 0;
        while (run < end.Length && end[end.Length - 1 - run] == escape)
        {
            run++;
        }

        return run % 2 == 1 ? (end[..^1], true) : (line, false);
    }

    private static DockerfileNode ParseInstruction(string line, char escape, int startLine, int endLine)
    {
        var trimmed = line.Trim();
        var split = Whitespace().Match(trimmed);
        var keyword = (split.Success ? trimmed[..split.Index] : trimmed).ToLowerInvariant();
        var rest = split.Success ? trimmed[(split.Index + split.Length)..] : string.Empty;
        var (flags, args) = ExtractFlags(rest);
        args = args.Trim();

        try
        {
            if (keyword == "onbuild")
            {
                // As BuildKit: a trigger is one instruction, never another ONBUILD (which would also
                // let a line of repeated ONBUILDs recurse here without end) nor a FROM or MAINTAINER.
                var trigger = args.Split([' ', '\t'], 2)[0].ToLowerInvariant();
                if (trigger is "onbuild" or "from" or "maintainer")
                {
                    throw new DockerfileSyntaxException(trigger == "onbuild" ? "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed" : $"{trigger.ToUpperInvariant()} isn't allowed as an ONBUILD trigger", 0);
                }

                var child = args.Length == 0 ? null : ParseInstruction(args, escape, startLine, endLine);
                return new DockerfileNode(keyword, flags, [], false, line, startLine, endLine, child);
            }

            var (parsed, json) = keyword switch
            {
                "run" or "cmd" or "entrypoint" or "shell" => MaybeJson(args),
                "copy" or "add" or "volume" => MaybeJsonToList(args),
                "env" => (NameValues(args, "ENV", escape), false),
                "label" => (NameValues(args, "LABEL", escape), false),
                "arg" => (Words(args, escape), false),
                "from" or "expose" => (WhitespaceDelimited(args), false),
                "user" or "workdir" or "maintainer" or "stopsignal" => (args.Length == 0 ? [] : [args], false),
                "healthcheck" => HealthCheck(args),
                _ => ([], false),
            };
            return new DockerfileNode(keyword, flags, parsed, json, line, startLine, endLine);
        }
        catch (DockerfileSyntaxException e) when (e.Line == 0)
        {
            throw new DockerfileSyntaxException(e.Message, startLine);
        }
    }

    // Leading words that start with "--" are flags; a bare "--" ends them. Quotes inside a flag
    // are removed and a backslash protects the next character.
    private static (IReadOnlyList<string> Flags, string Remainder) ExtractFlags(string line)
    {
        var flags = new List<string>();
        var pos = 0;
        while (true)
        {
            while (pos < line.Length && char.IsWhiteSpace(line[pos]))
            {
                pos++;
            }

            if (pos + 1 >= line.Length || line[pos] != '-' || line[pos + 1] != '-')
            {
                return (flags, line[pos..]);
            }

            var word = new StringBuilder();
            var quote = '\0';
            for (; pos < line.Length && (quote != '\0' || !char.IsWhiteSpace(line[pos])); pos++)
            {
                var c = line[pos];
                if (quote == '\0' && c is '\'' or '"')
                {
                    quote = c;
                }
                else if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && pos + 1 < line.Length)
                {
                    word.Append(line[++pos]);
                }
                else if (c != '\\')
                {
                    word.Append(c);
                }
            }

            if (word.ToString() == "--")
            {
                return (flags, line[pos..]);
            }

            flags.Add(word.ToString());
        }
    }

    private static (IReadOnlyList<string>, bool) MaybeJson(string args)
    {
        if (args.Length == 0)
        {
            return ([], false);
        }

        return TryJsonArray(args) is { } items ? (items, true) : ([args], false);
    }

    private static (IReadOnlyList<string>, bool) MaybeJsonToList(string args) =>
        TryJsonArray(args) is { } items ? (items, true) : (WhitespaceDelimited(args), false);

    // A JSON array of strings, or null when the text is no JSON array (then it is shell form).
    // A JSON array holding anything but strings is an error, as in BuildKit.
    private static List<string>? TryJsonArray(string args)
    {
        var text = args.TrimStart();
        if (!text.StartsWith('['))
        {
            return null;
        }

        JsonElement array;
        try
        {
            array = JsonDocument.Parse(text).RootElement;
        }
        catch (JsonException)
        {
            return null;
        }

        if (array.ValueKind != JsonValueKind.Array)
        {
            return null;
        }

        var items = new List<string>();
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                throw new DockerfileSyntaxException("when using JSON array syntax, arrays must be comprised of strings only", 0);
            }

            try
            {
                items.Add(item.GetString()!);
            }
            catch (InvalidOperationException)
            {
                throw new DockerfileSyntaxException("a JSON string is not valid Unicode (a lone surrogate escape such as \\ud800)", 0);
            }
        }

        return items;
    }

    private static (IReadOnlyList<string>, bool) HealthCheck(string args)
    {
        var end = 0;
        while (end < args.Length && !char.IsWhiteSpace(args[end]))
        {
            end++;
        }

        if (end == 0)
        {
            return ([], false);
        }

        var (command, json) = MaybeJson(args[end..].TrimStart());
        return ([args[..end], .. command], json);
    }

    // ENV and LABEL: "name value" (old form: one pair, value as written) or name=value words.
    // Each pair becomes name, value and the separator ("" or "="), as BuildKit's tree has it.
    private static List<string> NameValues(string args, string keyword, char escape)
    {
        var words = Words(args, escape);
        if (words.Count == 0)
        {
            return [];
        }

        if (!words[0].Contains('=', StringComparison.Ordinal))
        {
            var parts = Whitespace().Split(args, 2);
            if (parts.Length < 2)
            {
                throw new DockerfileSyntaxException($"{keyword} must have two arguments", 0);
            }

            return [parts[0], parts[1], ""];
        }

        var pairs = new List<string>();
        foreach (var word in words)
        {
            var at = word.IndexOf('=', StringComparison.Ordinal);
            if (at < 0)
            {
                throw new DockerfileSyntaxException($"Syntax error - can't find = in \"{word}\". Must be of the form: name=value", 0);
            }

            pairs.AddRange([word[..at], word[(at + 1)..], "="]);
        }

        return pairs;
    }

    // Words separated by blanks outside quotes. Quotes and escapes stay in the words (they are
    // resolved later, when variables are expanded).
    private static List<string> Words(string text, char escape)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        var keepEmpty = false;
        var quote = '\0';
        for (var pos = 0; pos < text.Length; pos++)
        {
            var c = text[pos];
            if (!inWord)
            {
                if (char.IsWhiteSpace(c))
                {
                    continue;
                }

                inWord = true;
            }

            if (quote == '\0')
            {
                if (char.IsWhiteSpace(c))
                {
                    if (keepEmpty || word.Length > 0)
                    {
                        words.Add(word.ToString());
                    }

                    word.Clear();
                    keepEmpty = false;
                    inWord = false;
                    continue;
                }

                if (c is '\'' or '"')
                {
                    quote = c;
                    keepEmpty = true;
                }
                else if (c == escape)
                {
                    if (pos + 1 == text.Length)
                    {
                        continue; // an escape at the very end is dropped
                    }

                    word.Append(c);
                    c = text[++pos];
                }

                word.Append(c);
                continue;
            }

            if (c == quote)
            {
                quote = '\0';
            }
            else if (c == escape && quote != '\'')
            {
                if (pos + 1 == text.Length)
                {
                    quote = '\0';
                    continue;
                }

                word.Append(c);
                c = text[++pos];
            }

            word.Append(c);
        }

        if (inWord && (keepEmpty || word.Length > 0))
        {
            words.Add(word.ToString());
        }

        return words;
    }

    private static List<string> WhitespaceDelimited(string args) =>
        args.Length == 0 ? [] : [.. Whitespace().Split(args)];

    [GeneratedRegex(@"^\d*<<(-?)([^<]*)$")]
    private static partial Regex HeredocMarker();

    [GeneratedRegex(@"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")]
    private static partial Regex DirectivePattern();

    [GeneratedRegex(@"[\t\v\f\r ]+")]
    private static partial Regex Whitespace();
}
