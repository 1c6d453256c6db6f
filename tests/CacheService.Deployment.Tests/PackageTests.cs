using System.IO.Compression;
using System.Xml.Linq;
using CacheService.Testing;

namespace CacheService.Deployment.Tests;

/// <summary>What <c>make pack</c> produces: each package says what it is and carries a readme.</summary>
public sealed class PackageTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("cs-pack-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [Theory]
    [InlineData("CacheService.Core")]
    [InlineData("CacheService.Api")]
    [InlineData("CacheService.Client")]
    public async Task A_package_has_a_description_tags_and_a_readme(string project)
    {
        // make test builds Release first; pack reuses that build.
        var (exit, output, error) = await Tools.RunAsync("dotnet", "dotnet-sdk-10.0", null,
            "pack", Path.Combine(ServiceScripts.RepositoryRoot, "src", project), "-c", "Release", "--no-build", "-nologo", "-o", _out);
        Assert.True(exit == 0, output + error);

        using var package = ZipFile.OpenRead(Directory.GetFiles(_out, project + ".*.nupkg").Single());
        using var nuspec = package.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var metadata = XDocument.Load(nuspec).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string Field(string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value ?? "";

        Assert.DoesNotContain("Package Description", Field("description"), StringComparison.Ordinal);
        Assert.Contains("CacheService", Field("description"), StringComparison.Ordinal);
        Assert.Contains("layer-cache", Field("tags"), StringComparison.Ordinal);
        Assert.Equal("README.md", Field("readme"));
        using var readme = new StreamReader(package.GetEntry("README.md")!.Open());
        Assert.Contains("CacheService client packages", await readme.ReadToEndAsync(), StringComparison.Ordinal);
    }
}
