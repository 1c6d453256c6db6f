using System.Diagnostics;
using CacheService.Core;

namespace CacheService.Dockerfile.Tests;

/// <summary>
/// A pull request brings the Dockerfile and the context: whatever they hold, planning ends in
/// bounded time with a plan or a clear refusal (<see cref="InvalidFieldException"/> or
/// <see cref="DockerfileSyntaxException"/>, which the CLI prints as exit 1), and reads nothing
/// outside the context. One case per class found by fuzzing (issue 19).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class HostileInputTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cs-hostile-").FullName;

    public HostileInputTests()
    {
        Directory.CreateDirectory(Context);
        File.WriteAllText(Path.Combine(Context, "a.txt"), "a");
    }

    private string Context => Path.Combine(_root, "ctx");

    // rm, not Directory.Delete: .NET cannot name a file whose name is not UTF-8.
    public void Dispose() => Process.Start("rm", ["-rf", _root])!.WaitForExit();

    private BuildPlan Plan(string dockerfile) =>
        BuildPlanner.Plan(DockerfileParser.Parse(dockerfile), new BuildContext(Context), new BuildSettings());

    // Refused cleanly, in bounded time.
    private void Refused(string dockerfile, string message)
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.ThrowsAny<Exception>(() => Plan(dockerfile));
        Assert.True(e is InvalidFieldException or DockerfileSyntaxException, $"{e.GetType().Name}: {e.Message}");
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_sibling_whose_name_starts_with_the_contexts_is_outside_it()
    {
        Directory.CreateDirectory(_root + "/ctx-x");
        File.WriteAllText(_root + "/ctx-x/secret", "secret");
        Refused("FROM scratch\nCOPY ../ctx-x/secret /x\n", "outside the build context");
    }

    [Fact]
    public void Links_to_outside_resolve_inside_the_context_and_a_copied_directory_keeps_links_as_links()
    {
        Directory.CreateDirectory(_root + "/outside");
        File.WriteAllText(_root + "/outside/secret", "secret");
        Directory.CreateSymbolicLink(Context + "/out", _root + "/outside");
        Refused("FROM scratch\nCOPY out/secret /x\n", "does not exist in the build context"); // /<root>/outside inside the context: nothing there

        var before = Plan("FROM scratch\nCOPY . /src\n").Stages[0].Steps[0].Sources[0].State;
        File.WriteAllText(_root + "/outside/secret", "changed");
        Assert.Equal(before, Plan("FROM scratch\nCOPY . /src\n").Stages[0].Steps[0].Sources[0].State);
    }

    [Theory]
    [InlineData("FROM scratch\nCOPY --chmod=77777777777777777777 a.txt /\n", "--chmod")]
    [InlineData("FROM scratch\nCOPY [z-a].txt /\n", "[z-a]")]
    [InlineData("FROM scratch\nCOPY []a.txt /\n", "is not a valid pattern")]
    [InlineData("FROM scratch\nARG V\nCOPY ${V:} /\n", "${V:}")]
    [InlineData("FROM scratch\nRUN [\"\\ud800\"]\n", "valid Unicode")]
    [InlineData("FROM scratch\nCOPY a\u0000b /\n", "a\u0000b")]
    [InlineData("FROM $UNSET\nRUN true\n", "FROM")]
    [InlineData("FROM scratch\nCOPY --from= /x /x\n", "--from")]
    public void Malformed_input_is_refused_with_a_message(string dockerfile, string message) => Refused(dockerfile, message);

    [Fact]
    public void A_chain_of_thirty_thousand_stages_is_refused_not_a_stack_overflow()
    {
        var text = new System.Text.StringBuilder("FROM scratch AS s0\n");
        for (var i = 1; i < 30_000; i++)
        {
            text.Append($"FROM s{i - 1} AS s{i}\n");
        }

        Refused(text.ToString(), "stages");
    }

    [Fact]
    public void Wildcards_and_ignore_patterns_match_in_linear_time()
    {
        File.WriteAllText(Path.Combine(Context, new string('a', 60)), "x");
        var pattern = string.Concat(Enumerable.Repeat("a*", 30)) + "b";
        Refused($"FROM scratch\nCOPY {pattern} /\n", "matches nothing");
        File.WriteAllText(Path.Combine(Context, ".dockerignore"), pattern + "\n");
        var clock = Stopwatch.StartNew();
        Plan("FROM scratch\nCOPY . /\n");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Thousands_of_continuation_lines_and_a_long_directive_parse_in_bounded_time()
    {
        var clock = Stopwatch.StartNew();
        DockerfileParser.Parse("FROM scratch\nRUN " + string.Concat(Enumerable.Repeat("a \\\n", 50_000)) + "b\n");
        DockerfileParser.Parse("#" + new string(' ', 50_000) + "a" + new string(' ', 50_000) + "=\nFROM scratch\n");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_selection_past_the_entry_limit_is_refused_whether_copied_whole_or_matched()
    {
        for (var i = 0; i < 20; i++)
        {
            File.WriteAllText(Path.Combine(Context, $"f{i}.txt"), "x");
        }

        var small = new BuildContext(Context, maxEntries: 10);
        foreach (var dockerfile in (string[])["FROM scratch\nCOPY . /\n", "FROM scratch\nCOPY f*.txt /\n"])
        {
            var e = Assert.Throws<InvalidFieldException>(() => BuildPlanner.Plan(DockerfileParser.Parse(dockerfile), small, new BuildSettings()));
            Assert.Contains("more than 10 entries", e.Message, StringComparison.Ordinal);
        }

        Plan("FROM scratch\nCOPY f*.txt /\n"); // the default limit takes them
    }

    [Theory]
    [InlineData("ONBUILD ONBUILD RUN x", "chaining ONBUILD")]
    [InlineData("ONBUILD FROM scratch", "FROM isn't allowed as an ONBUILD trigger")]
    public void ONBUILD_takes_one_plain_trigger_so_a_chain_of_them_cannot_recurse(string line, string message)
    {
        Assert.Contains(message, Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse($"FROM scratch\n{line}\n")).Message, StringComparison.Ordinal);
        var chain = "FROM scratch\n" + string.Concat(Enumerable.Repeat("ONBUILD ", 100_000)) + "RUN x\n";
        Assert.Contains("chaining ONBUILD", Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse(chain)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nested_variables_past_the_limit_are_refused_not_recursed()
    {
        var nested = string.Concat(Enumerable.Repeat("${A:-", 10_000)) + "x" + new string('}', 10_000);
        Refused($"FROM scratch\nCOPY {nested} /\n", "nest deeper than");
    }

    [Fact]
    public void An_invalid_class_in_dockerignore_is_refused_naming_the_file()
    {
        File.WriteAllText(Path.Combine(Context, ".dockerignore"), "[z-a]\n");
        var e = Assert.Throws<InvalidFieldException>(() => new BuildContext(Context));
        Assert.Contains(".dockerignore", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_Dockerfile_over_a_mebibyte_is_refused_before_it_is_parsed() =>
        Assert.Contains("longer than", Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse("FROM scratch\nRUN " + new string('a', 1 << 20))).Message, StringComparison.Ordinal);

    [Fact]
    public void A_fifo_in_the_context_is_refused_by_name_not_opened()
    {
        using var mkfifo = Process.Start("mkfifo", [Path.Combine(Context, "pipe")])!;
        mkfifo.WaitForExit();
        Refused("FROM scratch\nCOPY . /\n", "pipe");
    }

    [Fact]
    public void Doubling_a_variable_is_refused_before_it_takes_the_memory()
    {
        var text = "FROM scratch\nENV A=aaaaaaaaaaaaaaaa\n" + string.Concat(Enumerable.Repeat("ENV A=$A$A\n", 40)) + "COPY a.txt /$A\n";
        Refused(text, "longer than");
    }

    [Fact]
    public void A_file_name_that_is_not_UTF8_is_refused_by_its_bytes()
    {
        using var touch = Process.Start("bash", ["-c", $"touch '{Context}'/$'\\xff'"])!;
        touch.WaitForExit();
        Refused("FROM scratch\nCOPY . /\n", "not valid UTF-8");
    }
}
