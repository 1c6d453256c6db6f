using System.Globalization;
using System.Text.RegularExpressions;
using CacheService.Testing;

namespace CacheService.Deployment.Tests;

/// <summary>
/// The README's claims that a test can check against the code: the configuration table lists
/// exactly the settings the server binds, with their defaults; the metrics table lists exactly the
/// metrics the server exports; every link, every path in the layout table and every make target
/// it names exists. (The CLI's options it shows are checked in the client tests.)
/// </summary>
public sealed partial class ReadmeTests
{
    private static readonly string Readme = File.ReadAllText(Path.Combine(ServiceScripts.RepositoryRoot, "README.md"));

    [Fact]
    public void The_configuration_table_lists_every_setting_the_server_binds_and_no_other()
    {
        var listed = ConfigurationRows().SelectMany(r => r.Keys).ToHashSet(StringComparer.Ordinal);
        var bound = HelmChartTests.BoundSettings();
        Assert.True(listed.Count > 50, $"only {listed.Count} settings found in the table: is the pattern right?");
        Assert.Empty(bound.Except(listed).Order(StringComparer.Ordinal)); // bound but not documented
        Assert.Empty(listed.Except(bound).Order(StringComparer.Ordinal)); // documented but not bound
    }

    [Fact]
    public void Every_default_in_the_configuration_table_is_the_one_the_options_class_has()
    {
        var types = HelmChartTests.OptionTypes().ToDictionary(t => t.Section, t => t.Type, StringComparer.Ordinal);
        var compared = 0;
        foreach (var row in ConfigurationRows().Where(r => r.Default is not null))
        {
            foreach (var key in row.Keys)
            {
                var section = key[..key.IndexOf(':', StringComparison.Ordinal)];
                var property = types[section].GetProperty(key[(section.Length + 1)..])!;
                var actual = property.GetValue(Activator.CreateInstance(types[section]));
                Assert.True(SameValue(row.Default!, actual, property.PropertyType), $"README says CacheService:{key} defaults to {row.Default}; the code has {actual}");
                compared++;
            }
        }

        Assert.True(compared > 40, $"only {compared} defaults compared");
    }

    [Fact]
    public async Task The_metrics_table_lists_every_metric_the_server_exports_and_no_other()
    {
        var section = Readme[Readme.IndexOf("| metric | labels | what |", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n\n", StringComparison.Ordinal)];
        var listed = MetricName().Matches(section).Select(m => m.Value).ToHashSet(StringComparer.Ordinal);

        await using var server = await TestServer.StartAsync();
        using var http = new HttpClient();
        var exported = (await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics")).Split('\n')
            .Where(l => l.StartsWith("# TYPE cacheservice_", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToHashSet(StringComparer.Ordinal);
        Assert.True(exported.Count > 5, string.Join(", ", exported));
        Assert.Empty(exported.Except(listed).Order(StringComparer.Ordinal));
        Assert.Empty(listed.Except(exported).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_relative_link_and_every_path_in_the_layout_table_exists_and_every_project_is_in_it()
    {
        var links = RelativeLink().Matches(Readme).Select(m => m.Groups[1].Value).ToList();
        var layout = Readme[Readme.IndexOf("## Layout", StringComparison.Ordinal)..];
        layout = layout[..layout.IndexOf("\n## ", 3, StringComparison.Ordinal)];
        var paths = LayoutPath().Matches(layout).Select(m => m.Groups[1].Value).ToList();
        Assert.True(links.Count > 10 && paths.Count > 20, $"{links.Count} links, {paths.Count} paths: is the pattern right?");
        foreach (var path in links.Concat(paths))
        {
            var full = Path.Combine(ServiceScripts.RepositoryRoot, path.TrimEnd('/'));
            Assert.True(File.Exists(full) || Directory.Exists(full), $"the README names {path}, which does not exist");
        }

        // And the other way: every project is in the layout table.
        string[] projectDirectories = ["src", "tests"];
        foreach (var project in projectDirectories.SelectMany(d => Directory.GetDirectories(Path.Combine(ServiceScripts.RepositoryRoot, d))))
        {
            var relative = Path.GetRelativePath(ServiceScripts.RepositoryRoot, project);
            Assert.True(paths.Contains(relative), $"{relative} is missing from the README's layout table");
        }
    }

    [Fact]
    public void Every_make_target_the_readme_names_is_in_the_makefile()
    {
        var makefile = File.ReadAllText(Path.Combine(ServiceScripts.RepositoryRoot, "Makefile"));
        var targets = MakeTarget().Matches(makefile).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        var named = MakeCommand().Matches(Readme).SelectMany(m => m.Groups[1].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(w => !w.Contains('=', StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("bench-registry", named);
        Assert.Empty(named.Except(targets).Order(StringComparer.Ordinal));
    }

    // The configuration table's rows: the settings a row names ("Section:Key"; one row may name
    // several, and a ":<ns>" entry names its dictionary), and its default, or null for none.
    private static List<(string[] Keys, string? Default)> ConfigurationRows()
    {
        var rows = new List<(string[], string?)>();
        foreach (var line in Readme.Split('\n').Where(l => l.StartsWith("| `CacheService:", StringComparison.Ordinal)))
        {
            var cells = line.Split(" | ");
            var names = Backticked().Matches(cells[0]).Select(m => m.Groups[1].Value).ToList();
            var first = names[0]["CacheService:".Length..];
            var section = first[..first.IndexOf(':', StringComparison.Ordinal)];
            var keys = names.Select(n => n.StartsWith("CacheService:", StringComparison.Ordinal) ? n["CacheService:".Length..] : $"{section}:{n}")
                .Select(k => Regex.Replace(k, ":<[a-z]+>$", "")).ToArray();
            var isCollection = names[0].EndsWith('>');
            var value = Backticked().Match(cells[1]);
            rows.Add((keys, value.Success && !isCollection ? value.Groups[1].Value : null));
        }

        return rows;
    }

    private static bool SameValue(string documented, object? actual, Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        var invariant = CultureInfo.InvariantCulture;
        return type switch
        {
            _ when type == typeof(TimeSpan) => Equals(TimeSpan.Parse(documented, invariant), actual),
            _ when type == typeof(int) => Equals(int.Parse(documented, invariant), actual),
            _ when type == typeof(long) => Equals(long.Parse(documented, invariant), actual),
            _ when type == typeof(double) => Equals(double.Parse(documented, invariant), actual),
            _ when type == typeof(bool) => Equals(bool.Parse(documented), actual),
            { IsEnum: true } => string.Equals(documented, actual?.ToString(), StringComparison.OrdinalIgnoreCase),
            _ => string.Equals(documented, actual?.ToString(), StringComparison.Ordinal),
        };
    }

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex Backticked();

    [GeneratedRegex(@"cacheservice_[a-z_]+")]
    private static partial Regex MetricName();

    // [text](path) with a path in the repository (not a URL, not an anchor).
    [GeneratedRegex(@"\]\((?!https?:|#)([^)#]+)\)")]
    private static partial Regex RelativeLink();

    [GeneratedRegex(@"^\| `([^`]+)` \|", RegexOptions.Multiline)]
    private static partial Regex LayoutPath();

    [GeneratedRegex(@"^([a-z][a-z-]*):", RegexOptions.Multiline)]
    private static partial Regex MakeTarget();

    // "make run", "make services build", "make run PORT=6000 DATA_DIR=...": up to the end of the command.
    [GeneratedRegex(@"(?:^|`)make ((?:[a-z][a-z-]*|[A-Z_]+=\S+)(?: (?:[a-z][a-z-]*|[A-Z_]+=\S+))*)", RegexOptions.Multiline)]
    private static partial Regex MakeCommand();
}
