using CacheService.Core;
using CacheService.Dockerfile;
using CacheService.Testing;

namespace CacheService.Deployment.Tests;

/// <summary>
/// The server's Dockerfile, read by the project's own front end (no container engine runs here):
/// every COPY source exists in the context after .dockerignore, and the image runs the server.
/// </summary>
public sealed class ServerImageTests
{
    private static readonly string Root = ServiceScripts.RepositoryRoot;

    [Fact]
    public void The_server_Dockerfile_copies_sources_that_exist_and_starts_the_server_assembly()
    {
        var path = Path.Combine(Root, "Dockerfile");
        var dockerfile = DockerfileParser.Parse(File.ReadAllText(path));
        var settings = new BuildSettings
        {
            BaseImages = new Dictionary<string, Digest>
            {
                ["mcr.microsoft.com/dotnet/sdk:10.0"] = Digest.Of("sdk"u8),
                ["mcr.microsoft.com/dotnet/aspnet:10.0"] = Digest.Of("aspnet"u8),
            },
        };

        var plan = BuildPlanner.Plan(dockerfile, new BuildContext(Root, path), settings); // throws on a missing source
        Assert.Empty(plan.Warnings);
        Assert.Equal(["build", "runtime"], plan.Stages.Select(s => s.Name));

        var entrypoint = plan.Stages[^1].Steps.Single(s => s.Node.Keyword == "entrypoint").Node;
        Assert.True(entrypoint.Json);
        Assert.Equal(["dotnet", typeof(CacheService.Server.CacheServiceApp).Assembly.GetName().Name + ".dll"], entrypoint.Args);
        Assert.Contains(plan.Stages[^1].Steps, s => s.Node.Keyword == "user" && s.Node.Args[0] != "root");
    }
}
