using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Cli;
using CacheService.Testing;

namespace CacheService.Client.Tests;

/// <summary>
/// <c>layercache build</c> with the real buildah (vfs storage, chroot isolation) against the real
/// server in process. Each builder has a storage root of its own, as a CI machine that never built
/// anything has. RUN steps print <c>$RANDOM</c> into the image, so a file's content tells whether
/// its step ran again or came from the cache.
/// </summary>
public sealed class BuildCommandTests : IAsyncLifetime
{
    private const string Busybox = """
        FROM scratch
        COPY busybox /bin/busybox
        RUN ["/bin/busybox", "--install", "-s", "/bin"]
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("cs-build-").FullName;
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private TestServer _server = null!;

    private string Context => Path.Combine(_dir, "context");

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _environment["CACHESERVICE_ADDR"] = _server.GrpcAddress;
        _environment["CACHESERVICE_NAMESPACE"] = "team/main";
        Directory.CreateDirectory(Context);
        File.Copy("/bin/busybox", Path.Combine(Context, "busybox"));
        await File.WriteAllTextAsync(Path.Combine(Context, "app.txt"), "version 1\n");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true); // vfs storage is plain directories: nothing is mounted

    }

    private async Task Dockerfile(string text) => await File.WriteAllTextAsync(Path.Combine(Context, "Dockerfile"), text);

    // Builds the context as `builder` (a storage root of its own); the image goes to _dir/<builder>/image.
    private Task<Build> BuildAs(string builder, params string[] extra) => BuildAs(builder, CancellationToken.None, extra);

    private async Task<Build> BuildAs(string builder, CancellationToken cancellationToken, params string[] extra)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = new CliConsole(output, error, IsTerminal: false, _environment.GetValueOrDefault, TimeProvider.System);
        var home = Path.Combine(_dir, builder);
        string[] args =
        [
            "build", Context, "--root", Path.Combine(home, "root"), "--runroot", Path.Combine(home, "run"), "--storage-driver", "vfs",
            "--output", $"oci:{Path.Combine(home, "image")}", "--json", .. extra,
        ];
        var exit = await LayercacheCli.RunAsync(args, console, cancellationToken);
        return new Build(exit, exit == 0 ? JsonDocument.Parse(output.ToString()).RootElement : default, error.ToString(), Path.Combine(home, "image"));
    }

    private async Task<Build> BuildOk(string builder, params string[] extra)
    {
        var build = await BuildAs(builder, extra);
        Assert.True(build.Exit == 0, build.Error);
        return build;
    }

    [Fact]
    public async Task A_fresh_root_takes_every_layer_from_the_cache_and_makes_the_same_image_and_an_edit_rebuilds_only_from_its_copy()
    {
        await Dockerfile(Busybox + """

            ENV GREETING=hello
            WORKDIR /app
            RUN echo "$GREETING $RANDOM" > /app/random.txt
            COPY app.txt /app/app.txt
            RUN echo "$RANDOM" > /app/after.txt && wc -c /app/app.txt > /app/size.txt
            CMD ["cat", "/app/app.txt"]
            """);
        var a = await BuildOk("a");
        Assert.Equal(["built", "built", "config", "config", "built", "built", "built", "config"], a.Outcomes);
        Assert.Equal((0, 5), a.Counts); // config steps count as neither

        var b = await BuildOk("b");
        Assert.Equal(["cached", "cached", "config", "config", "cached", "cached", "cached", "config"], b.Outcomes);
        Assert.Equal((5, 0), b.Counts);
        Assert.Equal(a.ManifestDigest, b.ManifestDigest);
        Assert.Equal(a.Layers, b.Layers);
        Assert.Equal(await a.FileAsync("/app/random.txt"), await b.FileAsync("/app/random.txt"));
        Assert.StartsWith("hello ", await b.FileAsync("/app/random.txt"), StringComparison.Ordinal);

        await File.WriteAllTextAsync(Path.Combine(Context, "app.txt"), "version two\n");
        var c = await BuildOk("c");
        Assert.Equal(["cached", "cached", "config", "config", "cached", "built", "built", "config"], c.Outcomes);
        Assert.Equal((3, 2), c.Counts);
        Assert.Equal(await a.FileAsync("/app/random.txt"), await c.FileAsync("/app/random.txt")); // not run again
        Assert.NotEqual(await a.FileAsync("/app/after.txt"), await c.FileAsync("/app/after.txt"));
        Assert.Equal("12 /app/app.txt\n", await c.FileAsync("/app/size.txt"));
        Assert.Equal(a.Layers.Take(3), c.Layers.Take(3));

        var stats = await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" });
        Assert.Equal(7, stats.Entries); // five layer steps, then the two after the edit
    }

    [Fact]
    public async Task A_PR_namespace_takes_mains_layers_through_its_fallback_and_writes_only_to_itself()
    {
        await Dockerfile(Busybox + "\nRUN echo $RANDOM > /random.txt\n");
        var main = await BuildOk("main");
        await File.WriteAllTextAsync(Path.Combine(Context, "Dockerfile"), Busybox + "\nRUN echo $RANDOM > /random.txt\nRUN echo pr > /pr.txt\n");
        var pr = await BuildOk("pr", "--namespace", "team/pr-1", "--fallback-namespace", "team/main");
        Assert.Equal(["cached", "cached", "cached", "built"], pr.Outcomes);
        Assert.Equal(await main.FileAsync("/random.txt"), await pr.FileAsync("/random.txt"));
        Assert.Equal(1, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/pr-1" })).Entries);
        Assert.Equal(3, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" })).Entries);
    }

    [Fact]
    public async Task A_changed_build_arg_runs_again_from_the_first_step_that_sees_it()
    {
        await Dockerfile(Busybox + """

            RUN echo $RANDOM > /before.txt
            ARG VERSION=1
            RUN echo "$VERSION $RANDOM" > /version.txt
            """);
        var one = await BuildOk("one");
        var again = await BuildOk("again", "--build-arg", "VERSION=1"); // the default, given: the same key
        Assert.Equal(["cached", "cached", "cached", "config", "cached"], again.Outcomes);

        var two = await BuildOk("two", "--build-arg", "VERSION=2");
        Assert.Equal(["cached", "cached", "cached", "config", "built"], two.Outcomes);
        Assert.Equal(await one.FileAsync("/before.txt"), await two.FileAsync("/before.txt"));
        Assert.StartsWith("2 ", await two.FileAsync("/version.txt"), StringComparison.Ordinal);
        Assert.StartsWith("1 ", await one.FileAsync("/version.txt"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stage_built_on_another_runs_its_ONBUILD_triggers_and_an_edit_of_what_they_read_rebuilds_them()
    {
        await File.WriteAllTextAsync(Path.Combine(Context, "trigger.txt"), "one\n");
        await Dockerfile(Busybox.Replace("FROM scratch", "FROM scratch AS base", StringComparison.Ordinal) + """

            ONBUILD COPY trigger.txt /trigger.txt
            FROM base
            RUN cat /trigger.txt > /seen.txt
            """);
        var first = await BuildOk("first");
        Assert.Equal(["built", "built", "config", "built", "built"], first.Outcomes); // the trigger runs as the child's first step
        Assert.Equal("one\n", await first.FileAsync("/seen.txt"));

        await File.WriteAllTextAsync(Path.Combine(Context, "trigger.txt"), "two\n");
        var edited = await BuildOk("edited");
        Assert.Equal(["cached", "cached", "config", "built", "built"], edited.Outcomes);
        Assert.Equal("two\n", await edited.FileAsync("/seen.txt"));
    }

    [Fact]
    public async Task A_multi_stage_build_with_copy_from_is_taken_whole_from_the_cache_and_equals_what_buildah_bud_makes()
    {
        await Dockerfile("""
            FROM scratch AS base
            COPY busybox /bin/busybox
            RUN ["/bin/busybox", "--install", "-s", "/bin"]

            FROM base AS gen
            RUN mkdir /out && echo $RANDOM > /out/gen.txt && echo fixed > /out/fixed.txt

            FROM base
            LABEL team=main
            USER 1000:1000
            WORKDIR /home/app
            COPY --from=gen --chown=1000:1000 /out/fixed.txt ./fixed.txt
            COPY --chmod=600 app.txt ./app.txt
            RUN --mount=type=bind,from=gen,source=/out,target=/mnt cat /mnt/fixed.txt > ./mounted.txt
            SHELL ["/bin/sh", "-ec"]
            RUN echo "shell $0" > ./shell.txt
            EXPOSE 8080/tcp 9090
            VOLUME /data
            STOPSIGNAL SIGTERM
            ENV MODE=release PATH=/opt/bin:$PATH
            ENTRYPOINT ["/bin/sh", "-c"]
            CMD ["cat fixed.txt"]
            """);
        var a = await BuildOk("a");
        var b = await BuildOk("b");
        Assert.All(b.Outcomes, o => Assert.NotEqual("built", o));
        Assert.Equal(a.ManifestDigest, b.ManifestDigest);

        var reference = Path.Combine(_dir, "reference");
        string[] storage = ["--root", Path.Combine(reference, "root"), "--runroot", Path.Combine(reference, "run"), "--storage-driver", "vfs"];
        var bud = await Tools.RunAsync("buildah", "buildah", null, [.. storage, "bud", "--isolation", "chroot", "-t", "reference", Context]);
        Assert.True(bud.ExitCode == 0, bud.Error);
        var push = await Tools.RunAsync("buildah", "buildah", null, [.. storage, "push", "reference", $"oci:{Path.Combine(reference, "image")}:latest"]);
        Assert.True(push.ExitCode == 0, push.Error);

        var expected = await ImageTrees.ReadAsync(Path.Combine(reference, "image"), "latest");
        var built = await ImageTrees.ReadAsync(b.Image, "latest");
        Assert.Equal(expected.Keys, built.Keys);
        Assert.All(expected, e => Assert.Equal(e.Value, built[e.Key]));
        // Env is compared as a set: buildah itself orders it one way after FROM scratch and the other
        // after FROM <stage> (a stage's default PATH comes first or last), and no name repeats.
        var expectedConfig = Settings(await ImageTrees.ConfigAsync(Path.Combine(reference, "image"), "latest"));
        Assert.Equal(expectedConfig, Settings(await ImageTrees.ConfigAsync(b.Image, "latest")));
        Assert.Contains("\"StopSignal\":\"SIGTERM\"", expectedConfig, StringComparison.Ordinal); // the settings under test are there
        Assert.Equal("fixed\n", await b.FileAsync("/home/app/mounted.txt"));
        Assert.Equal(1000, built["/home/app/fixed.txt"].Uid);
        Assert.Equal(0x180, built["/home/app/app.txt"].Mode); // 600
        Assert.Equal("shell /bin/sh\n", await b.FileAsync("/home/app/shell.txt"));

        var gen = await BuildOk("target", "--target", "gen");
        Assert.Equal(["cached", "cached", "cached"], gen.Outcomes); // the base stage and gen, nothing of the last stage
        Assert.Equal("fixed\n", await gen.FileAsync("/out/fixed.txt"));
    }

    [Fact]
    public async Task A_base_image_pinned_by_digest_is_pulled_from_its_registry_and_the_steps_on_it_are_cached()
    {
        // The base: busybox in an image pushed to the server's own registry facade.
        await Dockerfile(Busybox);
        var baseImage = await BuildOk("base");
        var registry = $"127.0.0.1:{_server.HttpPort}";
        var copy = await Tools.RunAsync("skopeo", "skopeo", null, "copy", "--dest-tls-verify=false", $"oci:{baseImage.Image}:latest", $"docker://{registry}/images/busybox:1");
        Assert.True(copy.ExitCode == 0, copy.Error);

        await Dockerfile($"FROM {registry}/images/busybox@{baseImage.ManifestDigest}\nRUN echo $RANDOM > /random.txt\n");
        var a = await BuildOk("a", "--tls-verify", "false");
        var b = await BuildOk("b", "--tls-verify", "false");
        Assert.Equal(["built"], a.Outcomes);
        Assert.Equal(["cached"], b.Outcomes);
        Assert.Equal(await a.FileAsync("/random.txt"), await b.FileAsync("/random.txt"));
        Assert.Equal("file", (await ImageTrees.ReadAsync(b.Image, "latest"))["/bin/busybox"].Type); // the base's layers are below
    }

    [Fact]
    public async Task A_failing_run_fails_the_build_with_its_output_and_caches_nothing_for_it_while_earlier_steps_stay_cached()
    {
        await Dockerfile(Busybox + "\nRUN echo step-output-marker && exit 3\n");
        var failed = await BuildAs("a");
        Assert.Equal(1, failed.Exit);
        Assert.Contains("step-output-marker", failed.Error, StringComparison.Ordinal);
        Assert.Contains("[0 3/3] RUN echo step-output-marker && exit 3 failed", failed.Error, StringComparison.Ordinal);
        Assert.Equal(2, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" })).Entries);

        await Dockerfile(Busybox + "\nRUN echo fixed > /fixed.txt\n");
        var fixedBuild = await BuildOk("b");
        Assert.Equal(["cached", "cached", "built"], fixedBuild.Outcomes);
    }

    [Fact]
    public async Task An_unreachable_cache_is_a_warning_and_the_build_goes_on_without_it()
    {
        await Dockerfile(Busybox + "\nRUN echo built > /built.txt\n");
        _environment["CACHESERVICE_ADDR"] = $"127.0.0.1:{ServiceScripts.FreePort()}"; // nobody listens there
        var build = await BuildOk("a");
        Assert.Equal(["built", "built", "built"], build.Outcomes);
        Assert.Contains("warning: the cache could not look up a step", build.Error, StringComparison.Ordinal);
        Assert.Equal("built\n", await build.FileAsync("/built.txt"));
    }

    [Fact]
    public async Task A_server_that_stops_mid_build_leaves_a_valid_image_and_the_steps_before_it_cached()
    {
        await Dockerfile(Busybox + "\nRUN sleep 3 && echo late > /late.txt\n");
        var building = BuildAs("a");
        await WaitForEntriesAsync(2);
        await _server.StopAsync(); // while the last step runs
        var build = await building;
        Assert.True(build.Exit == 0, build.Error);
        Assert.Equal("late\n", await build.FileAsync("/late.txt"));
        Assert.Contains("warning: the cache could not", build.Error, StringComparison.Ordinal);

        await _server.StartAgainAsync();
        Assert.Equal(2, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" })).Entries); // the two steps before it, nothing half-committed
    }

    [Theory]
    [InlineData("--output", "nowhere")]
    [InlineData("--output", "docker:x")]
    [InlineData("--output", "oci:")]
    [InlineData("--tls-verify", "maybe")]
    public async Task A_garbage_output_or_tls_setting_is_a_usage_error_before_anything_runs(string option, string value)
    {
        await Dockerfile(Busybox);
        var build = await BuildAs("a", option, value);
        Assert.Equal(2, build.Exit);
        Assert.Contains(option, build.Error, StringComparison.Ordinal);
        Assert.Equal(0, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" })).Lookups);
    }

    [Fact]
    public async Task Cancelling_a_build_stops_the_running_step_at_once_and_commits_nothing_for_it()
    {
        await Dockerfile(Busybox + "\nRUN sleep 37 && echo never > /never.txt\n");
        using var cancel = new CancellationTokenSource();
        var building = BuildAs("a", cancel.Token);
        await WaitForEntriesAsync(2);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        cancel.Cancel(); // Ctrl-C
        var build = await building;
        Assert.Equal(1, build.Exit);
        Assert.Contains("cancelled", build.Error, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the build took {clock.Elapsed} to stop");
        Assert.DoesNotContain(Directory.GetDirectories("/proc"), p => ReadCommandLine(p) is var line && (line.Contains("sleep\u000037", StringComparison.Ordinal) || line.Contains("sleep 37 &&", StringComparison.Ordinal)));
        Assert.Equal(2, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/main" })).Entries);
    }

    [Fact]
    public async Task Two_builders_that_miss_the_same_steps_at_once_both_finish_with_valid_images_and_the_first_writer_wins()
    {
        await Dockerfile(Busybox + "\nRUN echo $RANDOM > /random.txt\n");
        var both = await Task.WhenAll(BuildAs("a"), BuildAs("b"));
        Assert.All(both, b => Assert.True(b.Exit == 0, b.Error));
        Assert.All(both, b => Assert.Equal(["built", "built", "built"], b.Outcomes));

        // Their chains may part at the first step whose layers differ (a directory's mtime, say);
        // a later builder follows, key by key, whichever layer was committed first.
        var c = await BuildOk("c");
        Assert.Equal(["cached", "cached", "cached"], c.Outcomes);
        Assert.All(Enumerable.Range(0, 3), i => Assert.Contains(c.Layers[i], both.Select(b => b.Layers[i])));
        var winner = both.First(b => b.Layers[2] == c.Layers[2]);
        Assert.Equal(await winner.FileAsync("/random.txt"), await c.FileAsync("/random.txt"));
    }

    private static string Settings(JsonElement config)
    {
        var settings = System.Text.Json.Nodes.JsonNode.Parse(config.GetProperty("config").GetRawText())!.AsObject();
        if (settings["Env"] is System.Text.Json.Nodes.JsonArray env)
        {
            settings["Env"] = new System.Text.Json.Nodes.JsonArray([.. env.Select(e => (string)e!).Order(StringComparer.Ordinal).Select(e => (System.Text.Json.Nodes.JsonNode)e)]);
        }

        return settings.ToJsonString();
    }

    private async Task WaitForEntriesAsync(long entries)
    {
        var stats = new GetStatsRequest { Namespace = "team/main" };
        for (var attempt = 0; attempt < 600 && (await _server.Client.GetStatsAsync(stats)).Entries < entries; attempt++)
        {
            await Task.Delay(50);
        }
    }

    private static string ReadCommandLine(string process)
    {
        try
        {
            return File.ReadAllText(Path.Combine(process, "cmdline"));
        }
        catch (IOException)
        {
            return string.Empty; // it ended meanwhile
        }
        catch (UnauthorizedAccessException)
        {
            return string.Empty;
        }
    }

    private sealed record Build(int Exit, JsonElement Json, string Error, string Image)
    {
        public List<string> Outcomes => [.. Json.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("outcome").GetString()!)];

        public List<string> Layers => [.. Json.GetProperty("steps").EnumerateArray().Where(s => s.GetProperty("layer").ValueKind == JsonValueKind.Object).Select(s => s.GetProperty("layer").GetProperty("digest").GetString()!)];

        public string ManifestDigest => Json.GetProperty("manifestDigest").GetString()!;

        public (int Cached, int Built) Counts => (Json.GetProperty("cachedSteps").GetInt32(), Json.GetProperty("builtSteps").GetInt32());

        public Task<string> FileAsync(string path) => ImageTrees.ReadFileAsync(Image, "latest", path);
    }
}
