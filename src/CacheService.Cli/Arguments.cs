namespace CacheService.Cli;

/// <summary>A mistake in how the command was called: exit code 2 and the command's usage.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The options of one command line: <c>--name value</c> or <c>--name=value</c> for options
/// that take a value (repeatable ones keep every value), <c>--name</c> for switches, and as many
/// plain arguments as the command allows.
/// </summary>
internal sealed class Arguments
{
    private readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _switches = new(StringComparer.Ordinal);
    private readonly List<string> _positionals = [];

    private Arguments()
    {
    }

    /// <summary>
    /// Reads <paramref name="args"/>; <paramref name="aliases"/> maps short names like <c>-f</c> to
    /// long ones; up to <paramref name="positionals"/> arguments that are no option are kept in order.
    /// </summary>
    public static Arguments Parse(IReadOnlyList<string> args, IReadOnlySet<string> valued, IReadOnlySet<string> switches, IReadOnlyDictionary<string, string> aliases, int positionals = 0)
    {
        var parsed = new Arguments();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? inline = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.IndexOf('=', StringComparison.Ordinal) is > 2 and var at)
            {
                inline = arg[(at + 1)..];
                arg = arg[..at];
            }

            arg = aliases.GetValueOrDefault(arg, arg);
            if (switches.Contains(arg) && inline is null)
            {
                parsed._switches.Add(arg);
            }
            else if (valued.Contains(arg))
            {
                var value = inline ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"{arg} needs a value"));
                if (!parsed._values.TryGetValue(arg, out var list))
                {
                    parsed._values[arg] = list = [];
                }

                list.Add(value);
            }
            else if (!arg.StartsWith('-') && parsed._positionals.Count < positionals)
            {
                parsed._positionals.Add(arg);
            }
            else
            {
                throw new UsageException(arg.StartsWith('-') ? $"unknown option {arg}" : $"unexpected argument '{arg}'");
            }
        }

        return parsed;
    }

    /// <summary>The value of an option given at most once, or null.</summary>
    public string? Value(string name) => _values.GetValueOrDefault(name) switch
    {
        null => null,
        [var one] => one,
        _ => throw new UsageException($"{name} is given more than once"),
    };

    /// <summary>Every value of a repeatable option, in order.</summary>
    public IReadOnlyList<string> Values(string name) => _values.GetValueOrDefault(name) ?? [];

    /// <summary>The plain argument at <paramref name="index"/>, or null when there are fewer.</summary>
    public string? Positional(int index) => index < _positionals.Count ? _positionals[index] : null;

    /// <summary>True when the switch was given.</summary>
    public bool Has(string name) => _switches.Contains(name);

    /// <summary>
    /// Splits <c>NAME=VALUE</c> options into pairs. A name may start with <c>=</c>, as the key
    /// settings <c>=user</c> and <c>=shell</c> do: the split is at the first <c>=</c> after it.
    /// </summary>
    public IReadOnlyDictionary<string, string> Pairs(string name)
    {
        var pairs = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var value in Values(name))
        {
            var at = value.Length == 0 ? -1 : value.IndexOf('=', 1);
            if (at <= 0)
            {
                throw new UsageException($"{name} takes NAME=VALUE, got '{value}'");
            }

            pairs[value[..at]] = value[(at + 1)..];
        }

        return pairs;
    }
}
