using CacheService.Core;
using CacheService.Dockerfile;

namespace CacheService.Build;

/// <summary>How a step's result was obtained.</summary>
public enum StepOutcome
{
    /// <summary>Its layer came from the cache; nothing ran.</summary>
    Cached,

    /// <summary>It ran in buildah (and its layer went to the cache, if the cache was reachable).</summary>
    Built,

    /// <summary>A config-only step: it changes the image's settings, not its files.</summary>
    Config,
}

/// <summary>One step of a finished build.</summary>
/// <param name="Stage">Its stage.</param>
/// <param name="Step">The step.</param>
/// <param name="Outcome">Cached, built or config-only.</param>
/// <param name="Key">Its cache key.</param>
/// <param name="Layer">The layer it contributed; null for a config-only step.</param>
/// <param name="Elapsed">Wall time spent on it (download, or run and upload).</param>
public sealed record StepReport(PlannedStage Stage, PlannedStep Step, StepOutcome Outcome, Digest Key, ImageLayer? Layer, TimeSpan Elapsed);

/// <summary>A finished build.</summary>
/// <param name="Steps">Every step of every stage built, in order.</param>
/// <param name="Layout">The layout that holds the image, named <see cref="ImageBuilder.ImageName"/>.</param>
/// <param name="ManifestDigest">The image's manifest digest.</param>
/// <param name="Elapsed">Wall time of the whole build.</param>
public sealed record BuildResult(IReadOnlyList<StepReport> Steps, OciLayout Layout, Digest ManifestDigest, TimeSpan Elapsed);

/// <summary>What a build tells its user while it runs.</summary>
public interface IBuildProgress
{
    /// <summary>A step is done.</summary>
    void StepDone(StepReport report);

    /// <summary>A line a running step printed.</summary>
    void StepOutput(string line);

    /// <summary>Bytes of a layer transfer so far (<paramref name="done"/> of <paramref name="total"/>).</summary>
    void Transfer(string verb, long done, long total);

    /// <summary>Something the user should know that does not stop the build (the cache is unreachable, say).</summary>
    void Warning(string message);
}
