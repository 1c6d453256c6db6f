using System.Text;
using CacheService.Dockerfile;

namespace CacheService.Build;

/// <summary>
/// The Dockerfile buildah runs for one step the cache does not have. It starts from the image
/// built so far (an OCI layout reference), replays the stage's config-only instructions up to the
/// step (ENV, ARG, WORKDIR, USER, SHELL, ...), so the step sees exactly what it would see in a
/// whole <c>buildah bud</c>, and ends with the step itself, as written. Earlier stages are stand-ins
/// for their finished images, in their places, so <c>COPY --from</c> and <c>RUN --mount</c> find them
/// by name or by index.
/// </summary>
/// <remarks>
/// <see cref="Settings"/> writes the Dockerfile that computes a stage's final settings: the stage
/// and the stages it starts FROM, each with only its config-only instructions, on no files at all.
/// buildah applies them exactly as in a whole build, and only the config is kept.
/// </remarks>
public static class StepDockerfile
{
    /// <summary>The Dockerfile of one step.</summary>
    /// <param name="dockerfile">The parsed Dockerfile: its escape character and global ARGs are kept.</param>
    /// <param name="stageImages">For each stage before this one, the reference of its finished image, or null when the build does not need it.</param>
    /// <param name="stage">The stage the step belongs to.</param>
    /// <param name="from">The reference of the image built so far in the stage.</param>
    /// <param name="until">How many of the stage's steps come before the step (their config-only instructions are replayed).</param>
    /// <param name="step">The step to run.</param>
    public static string Write(ParsedDockerfile dockerfile, IReadOnlyList<string?> stageImages, PlannedStage stage, string from, int until, PlannedStep step)
    {
        ArgumentNullException.ThrowIfNull(stageImages);
        ArgumentNullException.ThrowIfNull(stage);
        ArgumentNullException.ThrowIfNull(step);
        var text = Preamble(dockerfile);
        for (var i = 0; i < stageImages.Count; i++)
        {
            text.Append("FROM ").Append(stageImages[i] ?? "scratch").Append(" AS ").Append(StageName(dockerfile, i)).Append('\n');
        }

        text.Append("FROM ").Append(from).Append(" AS ").Append(StageName(dockerfile, stage.Index)).Append('\n');
        AppendConfig(text, stage, until);
        return text.Append(step.Node.KeyText).Append('\n').ToString();
    }

    /// <summary>The Dockerfile of a stage's final settings.</summary>
    /// <param name="dockerfile">The parsed Dockerfile: its escape character and global ARGs are kept.</param>
    /// <param name="chain">The stage last, after the stages it starts FROM, the one on an image first.</param>
    /// <param name="from">The reference of the first stage's base image (its settings, no layers).</param>
    public static string Settings(ParsedDockerfile dockerfile, IReadOnlyList<PlannedStage> chain, string from)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var text = Preamble(dockerfile);
        for (var i = 0; i < chain.Count; i++)
        {
            var parent = i == 0 ? from : StageName(dockerfile, chain[i - 1].Index);
            text.Append("FROM ").Append(parent).Append(" AS ").Append(StageName(dockerfile, chain[i].Index)).Append('\n');
            AppendConfig(text, chain[i], chain[i].Steps.Count);
        }

        return text.ToString();
    }

    private static StringBuilder Preamble(ParsedDockerfile dockerfile)
    {
        ArgumentNullException.ThrowIfNull(dockerfile);
        var text = new StringBuilder();
        if (dockerfile.Escape != '\\')
        {
            text.Append("# escape=").Append(dockerfile.Escape).Append('\n');
        }

        foreach (var global in dockerfile.Instructions.TakeWhile(n => n.Keyword != "from"))
        {
            text.Append(global.KeyText).Append('\n');
        }

        return text;
    }

    private static void AppendConfig(StringBuilder text, PlannedStage stage, int until)
    {
        foreach (var earlier in stage.Steps.Take(until).Where(s => !IsLayerStep(s)))
        {
            text.Append(earlier.Node.KeyText).Append('\n');
        }
    }

    /// <summary>True for the steps that make a layer: RUN, COPY and ADD.</summary>
    public static bool IsLayerStep(PlannedStep step)
    {
        ArgumentNullException.ThrowIfNull(step);
        return step.Node.Keyword is "run" or "copy" or "add";
    }

    // The name stage `index` goes by: its AS name, or a name only this file uses (references to an
    // unnamed stage are by index, which the stand-ins keep).
    private static string StageName(ParsedDockerfile dockerfile, int index)
    {
        var from = dockerfile.Instructions.Where(n => n.Keyword == "from").ElementAt(index);
        return from.Args.Count == 3 ? from.Args[2].ToLowerInvariant() : $"layercache-stage-{index}";
    }
}
