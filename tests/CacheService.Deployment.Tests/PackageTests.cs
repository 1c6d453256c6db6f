using System.IO.Compression;
using System.Xml.Linq;
using CacheService.Testing;

namespace CacheService.Deployment.Tests;

/// <summary>What <c>make pack</c> produces: each package says what it is and carries a readme, its license and where its source is.</summary>
public sealed class PackageTests : IDisposable
{
    private readonly string _out = Directory.CreateTempSubdirectory("cs-pack-").FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    [Theory]
    [InlineData("CacheService.Core")]
    [InlineData("CacheService.Api")]
    [InlineData("CacheService.Client")]
    public async Task A_package_has_a_description_tags_a_readme_a_license_and_its_repository(string project)
    {
        // make test builds Release first; pack reuses that build.
        var (exit, output, error) = await Tools.RunAsync("dotnet", "dotnet-sdk-10.0", null,
            "pack", Path.Combine(ServiceScripts.RepositoryRoot, "src", project), "-c", "Release", "--no-build", "-nologo", "-o", _out,
            "-p:RepositoryUrl=https://git.example.invalid/cacheservice.git"); // as make pack REPOSITORY_URL=... passes it
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

        // The license is the repository's LICENSE file, carried whole; the repository is named with its commit.
        Assert.Equal("LICENSE", Field("license"));
        using var license = new StreamReader(package.GetEntry("LICENSE")!.Open());
        Assert.Equal(await File.ReadAllTextAsync(Path.Combine(ServiceScripts.RepositoryRoot, "LICENSE")), await license.ReadToEndAsync());
        var repository = metadata.Elements().Single(e => e.Name.LocalName == "repository");
        Assert.Equal("https://git.example.invalid/cacheservice.git", repository.Attribute("url")?.Value);
        Assert.Matches("^[0-9a-f]{40}$", repository.Attribute("commit")?.Value ?? "");
    }
}
