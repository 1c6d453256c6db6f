namespace CacheService.Dockerfile.Tests;

/// <summary>
/// Replays BuildKit's own parser test corpus, unedited: every positive case must dump exactly
/// BuildKit's expected tree, every negative case must be refused.
/// </summary>
public class BuildKitCorpusTests
{
    private static readonly string Corpus = Path.Combine(AppContext.BaseDirectory, "testdata", "buildkit-dockerfile-parser");

    public static TheoryData<string> Positive() => Cases("testfiles");

    public static TheoryData<string> Negative() => Cases("testfiles-negative");

    [Fact]
    public void The_corpus_is_all_there() =>
        Assert.Equal((33, 4), (Positive().Count, Negative().Count));

    [Theory]
    [MemberData(nameof(Positive))]
    public void Parses_like_buildkit(string name)
    {
        var directory = Path.Combine(Corpus, "testfiles", name);
        var parsed = DockerfileParser.Parse(File.ReadAllText(Path.Combine(directory, "Dockerfile")));
        var dump = string.Concat(parsed.Instructions.Select(node => node.Dump() + "\n"));
        Assert.Equal(File.ReadAllText(Path.Combine(directory, "result")), dump);
    }

    [Theory]
    [MemberData(nameof(Negative))]
    public void Refuses_what_buildkit_refuses(string name)
    {
        var text = File.ReadAllText(Path.Combine(Corpus, "testfiles-negative", name, "Dockerfile"));
        var e = Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse(text));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    private static TheoryData<string> Cases(string kind)
    {
        var data = new TheoryData<string>();
        foreach (var directory in Directory.GetDirectories(Path.Combine(Corpus, kind)).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(directory));
        }

        return data;
    }
}
