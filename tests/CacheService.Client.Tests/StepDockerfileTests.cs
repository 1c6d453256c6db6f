using CacheService.Build;
using CacheService.Dockerfile;

namespace CacheService.Client.Tests;

/// <summary>The one-step Dockerfiles buildah runs for a miss: what they keep, replay and leave out.</summary>
public sealed class StepDockerfileTests : IDisposable
{
    private readonly string _context = Directory.CreateTempSubdirectory("cs-step-").FullName;

    public void Dispose() => Directory.Delete(_context, recursive: true);

    private (ParsedDockerfile Dockerfile, BuildPlan Plan) Plan(string text)
    {
        File.WriteAllText(Path.Combine(_context, "a.txt"), "a");
        var dockerfile = DockerfileParser.Parse(text);
        return (dockerfile, BuildPlanner.Plan(dockerfile, new BuildContext(_context), new BuildSettings()));
    }

    [Fact]
    public void A_step_sees_the_global_args_its_earlier_stages_in_place_and_its_stages_config_but_no_earlier_layer_step()
    {
        var (dockerfile, plan) = Plan("""
            # escape=`
            ARG BASE=scratch
            FROM ${BASE} AS tools
            RUN make tools
            FROM scratch
            FROM tools
            ENV A=1
            RUN echo $A
            WORKDIR /w
            COPY --from=0 a.txt `
              /a.txt
            """);
        var last = plan.Stages[^1];
        var text = StepDockerfile.Write(dockerfile, ["oci:/l:stage-0", null], last, "oci:/l:work", 3, last.Steps[3]);
        Assert.Equal("""
            # escape=`
            ARG BASE=scratch
            FROM oci:/l:stage-0 AS tools
            FROM scratch AS layercache-stage-1
            FROM oci:/l:work AS layercache-stage-2
            ENV A=1
            WORKDIR /w
            COPY --from=0 a.txt   /a.txt

            """.ReplaceLineEndings("\n"), text);
    }

    [Fact]
    public void A_stages_settings_replay_the_config_of_it_and_of_the_stages_it_starts_from_on_the_first_ones_base()
    {
        var (dockerfile, plan) = Plan("FROM scratch AS a\nENV X=1\nRUN x\nFROM a\nLABEL l=1\nRUN y\nCMD [\"z\"]\n");
        var text = StepDockerfile.Settings(dockerfile, plan.Stages, "oci:/l:s");
        Assert.Equal("FROM oci:/l:s AS a\nENV X=1\nFROM a AS layercache-stage-1\nLABEL l=1\nCMD [\"z\"]\n", text);
    }
}
