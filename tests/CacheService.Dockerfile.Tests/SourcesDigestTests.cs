namespace CacheService.Dockerfile.Tests;

/// <summary>What may and may not change the digest of a COPY's sources (DESIGN.md §2.6).</summary>
public sealed class SourcesDigestTests : IDisposable
{
    private readonly string _context = Directory.CreateTempSubdirectory("cs-context-").FullName;

    public SourcesDigestTests()
    {
        Write("src/main.go", "package main");
        Write("src/util/util.go", "package util");
        Write("src/notes.md", "notes");
        Write("README.md", "readme");
        Write(".dockerignore", "**/*.md\n");
    }

    public void Dispose() => Directory.Delete(_context, recursive: true);

    private void Write(string path, string content)
    {
        var full = Path.Combine(_context, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
    }

    private string DigestOf(string source = "src", int? chmod = null, (long, long)? chown = null) =>
        SourcesDigest.Of(SourcesDigest.Scan(_context, [source], DockerIgnore.Parse(File.ReadAllText(Path.Combine(_context, ".dockerignore"))), chmod, chown)).Value;

    [Fact]
    public void Editing_an_ignored_or_unselected_file_or_touching_a_file_keeps_the_digest()
    {
        var before = DigestOf();
        Write("src/notes.md", "edited notes");      // excluded by .dockerignore
        Write("README.md", "edited readme");        // not selected by the COPY
        File.SetLastWriteTimeUtc(Path.Combine(_context, "src/main.go"), DateTime.UtcNow.AddDays(-3)); // mtime
        Assert.Equal(before, DigestOf());
    }

    [Fact]
    public void Content_names_modes_and_owners_change_the_digest()
    {
        var before = DigestOf();
        Write("src/main.go", "package main // edited");
        var edited = DigestOf();
        Assert.NotEqual(before, edited);

        File.Move(Path.Combine(_context, "src/util/util.go"), Path.Combine(_context, "src/util/utils.go"));
        var renamed = DigestOf();
        Assert.NotEqual(edited, renamed);

        Write("src/new.go", "");
        Assert.NotEqual(renamed, DigestOf());
        Assert.NotEqual(DigestOf(), DigestOf(chmod: 0x1ED)); // 0755
        Assert.NotEqual(DigestOf(), DigestOf(chown: (1000, 1000)));
    }

    [Fact]
    public void Moving_bytes_between_a_name_and_its_content_changes_the_digest()
    {
        var a = SourcesDigest.Of([new SourceEntry("ab", SourceKind.File, 420, 0, 0, 1, Core.Digest.Of("c"u8), null)]);
        var b = SourceDigestOf("a", "bc");
        Assert.NotEqual(a, b);

        static Core.Digest SourceDigestOf(string name, string content) =>
            SourcesDigest.Of([new SourceEntry(name, SourceKind.File, 420, 0, 0, content.Length, Core.Digest.Of(System.Text.Encoding.UTF8.GetBytes(content)), null)]);
    }

    [Fact]
    public void A_source_outside_the_context_is_refused() =>
        Assert.Throws<Core.InvalidFieldException>(() => DigestOf("../etc"));

    private void Link(string path, string target) => File.CreateSymbolicLink(Path.Combine(_context, path), target);

    [Theory]
    [InlineData("link.go")]     // a named source that is a link
    [InlineData("linked")]      // a link to a directory
    [InlineData("linked/main.go")] // a path through a link
    public void A_source_that_is_a_symlink_is_followed_so_editing_what_it_points_at_moves_the_digest(string source)
    {
        Link("link.go", "src/main.go");
        Link("linked", "src");
        var before = DigestOf(source);
        Write("src/main.go", "package main // edited");
        Assert.NotEqual(before, DigestOf(source));
    }

    [Fact]
    public void A_symlink_inside_a_copied_directory_is_copied_as_a_link_so_only_its_text_counts()
    {
        Write("other/target.txt", "target");
        Link("src/inner", "../other/target.txt");
        var before = DigestOf();
        Write("other/target.txt", "edited target"); // the image holds the link, not these bytes
        Assert.Equal(before, DigestOf());
        File.Delete(Path.Combine(_context, "src/inner"));
        Link("src/inner", "../other/elsewhere.txt");
        Assert.NotEqual(before, DigestOf());
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("../../../../../../../etc/passwd")]
    public void A_symlink_resolves_inside_the_context_never_out_of_it(string target)
    {
        Link("escape", target);
        Assert.Throws<Core.InvalidFieldException>(() => DigestOf("escape")); // the context has no etc/passwd
        Write("etc/passwd", "the context's own");
        var inside = DigestOf("escape");
        Write("etc/passwd", "the context's own, edited");
        Assert.NotEqual(inside, DigestOf("escape"));
    }

    [Fact]
    public void A_loop_of_symlinks_is_refused_not_followed_forever()
    {
        Link("loop-a", "loop-b");
        Link("loop-b", "loop-a");
        Assert.Contains("too many levels", Assert.Throws<Core.InvalidFieldException>(() => DigestOf("loop-a")).Message, StringComparison.Ordinal);
    }
}
