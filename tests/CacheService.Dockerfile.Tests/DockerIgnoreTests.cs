namespace CacheService.Dockerfile.Tests;

public class DockerIgnoreTests
{
    [Theory]
    [InlineData("*.md", "README.md", true)]
    [InlineData("*.md", "docs/README.md", false)]
    [InlineData("**/*.md", "docs/deep/README.md", true)]
    [InlineData("**/*.md", "README.md", true)]
    [InlineData("/build", "build/out.o", true)]
    [InlineData("build", "src/build", false)]
    [InlineData("node_modules", "node_modules/a/b.js", true)]
    [InlineData("src/**/test", "src/test", true)]
    [InlineData("src/**/test", "src/a/b/test/x.go", true)]
    [InlineData("te?t", "test", true)]
    [InlineData("te?t", "te/t", false)]
    [InlineData("[a-c]at", "bat", true)]
    [InlineData("[a-c]at", "dat", false)]
    [InlineData("./src/../lib/*.so", "lib/x.so", true)]
    [InlineData("**", "anything/at/all", true)]
    public void Matches_like_docker(string pattern, string path, bool ignored) =>
        Assert.Equal(ignored, DockerIgnore.Parse(pattern).IsIgnored(path));

    [Fact]
    public void The_last_matching_rule_wins_and_exceptions_re_include()
    {
        var rules = DockerIgnore.Parse("""
            # build output and docs
            *.md
            !README.md
            logs/
            !logs/keep.log
            logs/keep.log
            """);
        Assert.True(rules.IsIgnored("CHANGES.md"));
        Assert.False(rules.IsIgnored("README.md"));
        Assert.True(rules.IsIgnored("logs/a.log"));
        Assert.True(rules.IsIgnored("logs/keep.log")); // ignored again by the last line
        Assert.False(rules.IsIgnored("src/main.go"));
    }

    [Fact]
    public void Blank_lines_and_comments_are_no_rules() =>
        Assert.False(DockerIgnore.Parse("\n   \n# *.go\n").IsIgnored("main.go"));
}
