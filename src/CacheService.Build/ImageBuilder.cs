using CacheService.Core;
using CacheService.Core.Keys;
using CacheService.Dockerfile;

namespace CacheService.Build;

/// <summary>
/// Builds a planned Dockerfile through the cache, stage by stage and step by step, the way a
/// build agent asks the service: for each layer step, "was this step on this parent state built
/// before?" A hit's layer is downloaded and verified and nothing runs; a miss runs in buildah, and
/// its layer is pushed and committed under its key with the key's inputs, for the next builder.
/// Config-only steps shape the image's settings; WORKDIR and VOLUME move the state by their key,
/// metadata steps (ENV, LABEL, USER, ...) leave it (docs/cache-key.md).
/// </summary>
/// <remarks>
/// <para>The image is assembled in an OCI layout in <c>workDirectory</c>: a stage's base image, then
/// one layer per layer step, exactly the blobs the cache holds. A step that runs sees the image
/// built so far with the stage's config-only instructions replayed by buildah (see
/// <see cref="StepDockerfile"/>); the image's final settings are buildah's too, so they are what
/// <c>buildah bud</c> makes of the same Dockerfile.</para>
/// <para>Keys are computed here with <see cref="CacheKeyV2"/>, the function the server uses, so
/// after a miss the next steps' keys follow the layer actually built.</para>
/// </remarks>
public sealed class ImageBuilder(Buildah buildah, CacheSession cache, IBuildProgress progress, TimeProvider time)
{
    /// <summary>The name of the built image in the result's layout.</summary>
    public const string ImageName = "latest";

    private readonly string _buildId = Guid.NewGuid().ToString("N")[..12];
    private readonly Buildah _buildah = buildah;
    private readonly CacheSession _cache = cache;
    private readonly IBuildProgress _progress = progress;
    private readonly TimeProvider _time = time;

    /// <summary>Builds <paramref name="plan"/> in <paramref name="workDirectory"/>, which it creates and leaves for the caller to remove.</summary>
    /// <exception cref="BuildahException">A step, or the base image's pull, failed.</exception>
    public async Task<BuildResult> BuildAsync(
        ParsedDockerfile dockerfile, BuildPlan plan, BuildContext context, BuildSettings settings, string workDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(context);
        var started = _time.GetTimestamp();
        var run = new Run(this, dockerfile, plan, context, settings, new OciLayout(Path.Combine(workDirectory, "layout")), workDirectory);
        try
        {
            foreach (var stage in plan.Stages)
            {
                await run.BuildStageAsync(stage, cancellationToken);
            }

            var target = plan.Stages[^1];
            var image = run.Layout.ReadImage(Run.FinalName(target.Index)).WithSettingsOf(await run.SettingsAsync(target.Index, cancellationToken));
            await run.PublishedAsync();
            var digest = run.Layout.WriteImage(ImageName, image);
            return new BuildResult(run.Reports, run.Layout, digest, _time.GetElapsedTime(started));
        }
        finally
        {
            await run.PublishedAsync(); // a failed step keeps what the steps before it built
            await _buildah.RemoveImagesAsync(run.StoredImages);
        }
    }

    /// <summary>
    /// The state of one build: the layout, each stage's final state, what to clean up. A stage's
    /// final image in the layout has its files and the settings of its base; its own settings are
    /// computed only when read: for the target, and for a stage whose dependent runs a step.
    /// </summary>
    private sealed class Run(ImageBuilder owner, ParsedDockerfile dockerfile, BuildPlan plan, BuildContext context, BuildSettings settings, OciLayout layout, string workDirectory)
    {
        private readonly Dictionary<int, Digest> _finalStates = [];
        private readonly Dictionary<int, System.Text.Json.Nodes.JsonObject> _settings = [];
        private readonly Dictionary<int, OciImage> _bases = [];
        private readonly List<Task> _publishing = [];

        public OciLayout Layout => layout;

        public List<StepReport> Reports { get; } = [];

        public List<string> StoredImages { get; } = [];

        public static string FinalName(int stage) => $"stage-{stage}";

        // Uploads and commits run beside the next steps; a build waits for them before it ends.
        public async Task PublishedAsync()
        {
            try
            {
                await Task.WhenAll(_publishing);
            }
            catch (OperationCanceledException)
            {
                // cancelled with the build: nothing half-committed, the server drops partial uploads
            }
        }

        public async Task BuildStageAsync(PlannedStage stage, CancellationToken cancellationToken)
        {
            var (image, state) = await BaseAsync(stage, cancellationToken);
            var unsettled = stage.Base.Stage; // a step that runs needs that stage's settings first
            foreach (var step in stage.Steps)
            {
                var started = owner._time.GetTimestamp();
                var inputs = new StepKeyInput(state, stage.Platform, step.Instruction, step.Args, step.SourcesDigest(s => _finalStates[s]));
                var key = CacheKeyV2.Compute(inputs);
                if (!key.IsLayerStep)
                {
                    state = CacheKeyV2.NextState(state, key, null);
                    Report(stage, step, StepOutcome.Config, key.Key, null, started);
                    continue;
                }

                var cached = await owner._cache.LookupAsync(key.Key, cancellationToken);
                ImageLayer layer;
                StepOutcome outcome;
                if (cached is not null && await owner._cache.DownloadAsync(cached, layout, cancellationToken))
                {
                    (layer, outcome) = (cached.Layer, StepOutcome.Cached);
                }
                else
                {
                    if (unsettled is { } parent)
                    {
                        image = image.WithSettingsOf(await SettingsAsync(parent, cancellationToken));
                        unsettled = null;
                    }

                    layer = await RunStepAsync(stage, step, image, cancellationToken);
                    _publishing.Add(owner._cache.PublishAsync(layer, layout.BlobPath(layer.Digest), inputs, key.Key, cancellationToken));
                    outcome = StepOutcome.Built;
                }

                image = image.WithLayer(layer, step.Node.Original.Trim());
                state = CacheKeyV2.NextState(state, key, layer.DiffId);
                Report(stage, step, outcome, key.Key, layer, started);
            }

            layout.WriteImage(FinalName(stage.Index), image);
            _finalStates[stage.Index] = state;
        }

        // A stage's final settings: buildah applies the config-only instructions of the stage and
        // of the stages it starts FROM, in one Dockerfile, to the first one's base settings alone
        // (settings do not depend on files, so buildah unpacks none).
        public async Task<System.Text.Json.Nodes.JsonObject> SettingsAsync(int index, CancellationToken cancellationToken)
        {
            if (_settings.TryGetValue(index, out var known))
            {
                return known;
            }

            var chain = new List<PlannedStage> { plan.Stages.Single(s => s.Index == index) };
            while (chain[0].Base.Stage is { } parent)
            {
                chain.Insert(0, plan.Stages.Single(s => s.Index == parent));
            }

            var name = $"settings-{index}";
            layout.WriteImage(name + "-from", _bases[chain[0].Index].WithoutLayers());
            var text = StepDockerfile.Settings(dockerfile, chain, layout.Reference(name + "-from"));
            return _settings[index] = (await BudAsync(text, name, chain[^1].Platform, null, cancellationToken)).Config;
        }

        // The image and state below the stage's first step.
        private async Task<(OciImage Image, Digest State)> BaseAsync(PlannedStage stage, CancellationToken cancellationToken)
        {
            if (stage.Base.Stage is { } earlier)
            {
                return (layout.ReadImage(FinalName(earlier)), _finalStates[earlier]);
            }

            var state = stage.Base.State!.Value;
            if (stage.From.Equals("scratch", StringComparison.OrdinalIgnoreCase))
            {
                _bases[stage.Index] = OciImage.Scratch(stage.Platform);
            }
            else
            {
                var name = $"base-{stage.Index}";
                await owner._buildah.PullAsync(stage.From, stage.Platform, cancellationToken);
                await owner._buildah.PushAsync(stage.From, layout.Reference(name), cancellationToken);
                _bases[stage.Index] = layout.ReadImage(name);
            }

            return (_bases[stage.Index], state);
        }

        // Runs one step in buildah on the image built so far; returns the one layer it added.
        private async Task<ImageLayer> RunStepAsync(PlannedStage stage, PlannedStep step, OciImage image, CancellationToken cancellationToken)
        {
            var name = $"step-{stage.Index}-{step.Index}";
            layout.WriteImage(name + "-from", image);
            var stageImages = Enumerable.Range(0, stage.Index)
                .Select(i => _finalStates.ContainsKey(i) ? layout.Reference(FinalName(i)) : null).ToList();
            var text = StepDockerfile.Write(dockerfile, stageImages, stage, layout.Reference(name + "-from"), step.Index, step);
            OciImage built;
            try
            {
                built = await BudAsync(text, name, stage.Platform, owner._progress.StepOutput, cancellationToken);
            }
            catch (BuildahException e)
            {
                throw new StepFailedException($"[{stage.Name} {step.Index + 1}/{stage.Steps.Count}] {step.Node.Original.Trim()}", e);
            }

            if (built.Layers.Count != image.Layers.Count + 1)
            {
                throw new InvalidOperationException($"buildah made {built.Layers.Count - image.Layers.Count} layers of one step ({step.Node.Original.Trim()})");
            }

            return built.Layers[^1];
        }

        // One `buildah bud` of `text`; returns what it made, as pushed to the layout under `name`.
        private async Task<OciImage> BudAsync(string text, string name, string platform, Action<string>? output, CancellationToken cancellationToken)
        {
            var file = Path.Combine(workDirectory, name + ".Dockerfile");
            await File.WriteAllTextAsync(file, text, cancellationToken);
            var tag = $"localhost/layercache-build-{owner._buildId}:{name}";
            StoredImages.Add(tag);
            await owner._buildah.BudAsync(file, context.Root, tag, platform, settings.BuildArgs, output, cancellationToken);
            await owner._buildah.PushAsync(tag, layout.Reference(name), cancellationToken);
            return layout.ReadImage(name);
        }

        private void Report(PlannedStage stage, PlannedStep step, StepOutcome outcome, Digest key, ImageLayer? layer, long started)
        {
            var report = new StepReport(stage, step, outcome, key, layer, owner._time.GetElapsedTime(started));
            Reports.Add(report);
            owner._progress.StepDone(report);
        }
    }
}
