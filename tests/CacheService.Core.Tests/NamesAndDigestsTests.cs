
namespace CacheService.Core.Tests;

public class NamesAndDigestsTests
{
    [Theory]
    [InlineData("team")]
    [InlineData("team/main")]
    [InlineData("a/b/c/d")]
    [InlineData("team-1/pr_42/x.y")]
    [InlineData("team/blobs")]
    [InlineData("team/sha256/blobs")]
    public void Accepts_valid_namespaces(string name) => Assert.Equal(name, NamespaceName.Validate(name, "namespace"));

    [Theory]
    [InlineData("")]
    [InlineData("Team")]
    [InlineData("/team")]
    [InlineData("team/")]
    [InlineData("team//main")]
    [InlineData("a/b/c/d/e")]
    [InlineData("-team")]
    [InlineData(".uploads")]
    [InlineData("..")]
    [InlineData("team main")]
    [InlineData("x/blobs/sha256/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("blobs/sha256/x")]
    public void Refuses_invalid_namespaces_naming_the_field(string name)
    {
        var e = Assert.Throws<InvalidFieldException>(() => NamespaceName.Validate(name, "fallback_namespaces[1]"));
        Assert.Equal("fallback_namespaces[1]", e.Field);
    }

    [Fact]
    public void Refuses_a_namespace_over_128_characters()
    {
        var name = new string('a', 60) + "/" + new string('b', 68);
        Assert.Equal(129, name.Length);
        Assert.Throws<InvalidFieldException>(() => NamespaceName.Validate(name, "namespace"));
        Assert.Equal(name[..128], NamespaceName.Validate(name[..128], "namespace"));
    }

    [Theory]
    [InlineData("sha256:")]
    [InlineData("sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789")]
    [InlineData("sha512:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")]
    [InlineData("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")]
    [InlineData("sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678")]
    [InlineData("sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789 ")]
    [InlineData("sha256:gbcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789")]
    public void Refuses_malformed_digests_naming_the_field(string text)
    {
        var e = Assert.Throws<InvalidFieldException>(() => Digest.Parse(text, "layer.digest"));
        Assert.Equal("layer.digest", e.Field);
    }

    [Fact]
    public void Digest_of_known_bytes() =>
        Assert.Equal("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Digest.Of([]).Value);
}
