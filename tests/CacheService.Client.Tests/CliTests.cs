using System.Text.Json;
using CacheService.Cli;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Server;
using CacheService.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CacheService.Client.Tests;

/// <summary>The layercache command against the real server in process.</summary>
public sealed class CliTests : IAsyncLifetime
{
    private const string Dockerfile = """
        FROM alpine@sha256:abababababababababababababababababababababababababababababababab AS build
        COPY src/ /src/
        WORKDIR /src
        RUN make
        FROM scratch
        COPY --from=build /src/app /app
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("cs-cli-").FullName;
    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);
    private TestServer _server = null!;
    private TroubledIndex _index = null!;

    private string Context => Path.Combine(_dir, "context");

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(services => services.AddSingleton<ILayerIndex>(sp => _index = new TroubledIndex(new SqliteLayerIndex(
            Path.Combine(sp.GetRequiredService<IOptions<StorageOptions>>().Value.DataDirectory, "index.db"), sp.GetRequiredService<TimeProvider>()))));
        _environment["CACHESERVICE_ADDR"] = _server.GrpcAddress;
        _environment["CACHESERVICE_NAMESPACE"] = "team/main";
        Directory.CreateDirectory(Path.Combine(Context, "src"));
        await File.WriteAllTextAsync(Path.Combine(Context, "Dockerfile"), Dockerfile);
        await File.WriteAllTextAsync(Path.Combine(Context, "src", "main.c"), "int main() { return 0; }");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<(int Exit, string Out, string Error)> Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var console = new CliConsole(output, error, IsTerminal: false, _environment.GetValueOrDefault, _server.Time);
        var exit = await LayercacheCli.RunAsync(args, console, CancellationToken.None);
        return (exit, output.ToString(), error.ToString());
    }

    private async Task<JsonElement> PlanJson(params string[] extra)
    {
        var (exit, output, error) = await Run(["plan", "--context", Context, "--platform", "linux/amd64", "--json", .. extra]);
        Assert.True(exit == 0, error);
        return JsonDocument.Parse(output).RootElement;
    }

    // A stand-in layer; its content follows the step's key, as a real build's output would.
    private async Task<string> LayerFileFor(string name, string key)
    {
        var path = Path.Combine(_dir, name + ".tar");
        await Layers.WriteTarAsync(path, (name + ".txt", System.Text.Encoding.UTF8.GetBytes("output of " + key)));
        return path;
    }

    // Plays a builder: plan, build the first miss (a stand-in tar), push it, until nothing misses.
    // Plans with `extra` and pushes each miss to its --namespace (push writes one namespace: no fallbacks).
    private async Task<int> BuildAsync(params string[] extra)
    {
        var writes = extra.Where((a, i) => a != "--fallback-namespace" && (i == 0 || extra[i - 1] != "--fallback-namespace")).ToArray();
        var pushed = 0;
        while ((await PlanJson(extra)).GetProperty("steps").EnumerateArray().FirstOrDefault(s => s.GetProperty("status").GetString() == "miss") is { ValueKind: JsonValueKind.Object } miss)
        {
            var key = miss.GetProperty("key").GetString()!;
            var layer = await LayerFileFor($"layer{pushed}", key);
            var (exit, _, error) = await Run(["push", "--key", key, "--layer", layer, .. writes]);
            Assert.True(exit == 0, error);
            pushed++;
        }

        return pushed;
    }

    [Fact]
    public async Task Plan_json_has_exactly_the_documented_shape_with_pending_steps_after_the_first_miss()
    {
        var plan = await PlanJson();
        Assert.Equal(["cachedSteps", "steps"], plan.EnumerateObject().Select(p => p.Name));
        Assert.Equal(0, plan.GetProperty("cachedSteps").GetInt32());
        var steps = plan.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(4, steps.Count);
        Assert.All(steps, s => Assert.Equal(["stage", "index", "instruction", "key", "status", "layer"], s.EnumerateObject().Select(p => p.Name)));
        Assert.Equal(("build", 0, "COPY src/ /src/", "miss"), (steps[0].GetProperty("stage").GetString(), steps[0].GetProperty("index").GetInt32(), steps[0].GetProperty("instruction").GetString(), steps[0].GetProperty("status").GetString()));
        Assert.StartsWith("sha256:", steps[0].GetProperty("key").GetString(), StringComparison.Ordinal);
        Assert.All(steps.Skip(1), s =>
        {
            Assert.Equal("pending", s.GetProperty("status").GetString());
            Assert.Equal(JsonValueKind.Null, s.GetProperty("key").ValueKind);
            Assert.Equal(JsonValueKind.Null, s.GetProperty("layer").ValueKind);
        });
        Assert.Equal("1", steps[3].GetProperty("stage").GetString()); // an unnamed stage is named by its index
    }

    [Fact]
    public async Task Plan_push_plan_again_and_pull_round_trip()
    {
        Assert.Equal(3, await BuildAsync()); // COPY, RUN, COPY --from: WORKDIR is config only

        var plan = await PlanJson();
        Assert.Equal(4, plan.GetProperty("cachedSteps").GetInt32());
        var last = plan.GetProperty("steps")[3];
        Assert.Equal("hit", last.GetProperty("status").GetString());
        var layer = last.GetProperty("layer");
        Assert.Equal(["digest", "diffId", "size"], layer.EnumerateObject().Select(p => p.Name));

        var output = Path.Combine(_dir, "pulled.tar");
        var (exit, _, error) = await Run("pull", "--key", last.GetProperty("key").GetString()!, "-o", output);
        Assert.True(exit == 0, error);
        Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(_dir, "layer2.tar")), await File.ReadAllBytesAsync(output));
        Assert.Equal(layer.GetProperty("size").GetInt64(), new FileInfo(output).Length);

        var (_, human, _) = await Run("plan", "--context", Context, "--platform", "linux/amd64");
        Assert.Contains("CACHED  [build 1/3] COPY src/ /src/", human, StringComparison.Ordinal);
        Assert.Contains("4 of 4 steps cached", human, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Editing_a_copied_file_misses_from_that_COPY_on_and_in_the_stage_that_copies_from_it()
    {
        await BuildAsync();
        await File.WriteAllTextAsync(Path.Combine(Context, "src", "main.c"), "int main() { return 1; }");
        var statuses = (await PlanJson()).GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("status").GetString()).ToList();
        Assert.Equal(["miss", "pending", "pending", "pending"], statuses);

        await File.WriteAllTextAsync(Path.Combine(Context, "src", "main.c"), "int main() { return 0; }");
        await File.WriteAllTextAsync(Path.Combine(Context, "Dockerfile"), Dockerfile.Replace("RUN make", "RUN make all", StringComparison.Ordinal));
        statuses = (await PlanJson()).GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("status").GetString()).ToList();
        Assert.Equal(["hit", "hit", "miss", "pending"], statuses);
    }

    [Fact]
    public async Task A_PR_namespace_reads_main_as_fallback_and_writes_only_to_itself()
    {
        await BuildAsync();
        string[] pr = ["--namespace", "team/pr-42", "--fallback-namespace", "team/main"];
        Assert.Equal(4, (await PlanJson(pr)).GetProperty("cachedSteps").GetInt32());

        await File.WriteAllTextAsync(Path.Combine(Context, "src", "main.c"), "int main() { return 2; }");
        Assert.Equal(3, await BuildAsync(pr));
        Assert.Equal(4, (await PlanJson(pr)).GetProperty("cachedSteps").GetInt32());
        Assert.Equal(0, (await PlanJson()).GetProperty("cachedSteps").GetInt32()); // main did not get the PR's layers
    }

    [Fact]
    public async Task Pull_resumes_a_partial_file_and_checks_the_digest()
    {
        await BuildAsync();
        var step = (await PlanJson()).GetProperty("steps")[0];
        var whole = await File.ReadAllBytesAsync(Path.Combine(_dir, "layer0.tar"));
        var output = Path.Combine(_dir, "partial.tar");
        await File.WriteAllBytesAsync(output, whole[..1000]);

        var (exit, _, error) = await Run("pull", "--digest", step.GetProperty("layer").GetProperty("digest").GetString()!, "-o", output);
        Assert.True(exit == 0, error);
        Assert.Contains("resuming", error, StringComparison.Ordinal);
        Assert.Equal(whole, await File.ReadAllBytesAsync(output));

        var wrong = whole.ToArray();
        wrong[10] ^= 0xff; // a partial file that is not a prefix of the layer
        await File.WriteAllBytesAsync(output, wrong[..2000]);
        (exit, _, error) = await Run("pull", "--key", step.GetProperty("key").GetString()!, "-o", output);
        Assert.Equal(1, exit);
        Assert.Contains("does not match", error, StringComparison.Ordinal);
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task History_lists_the_cached_chain_newest_first_with_ages()
    {
        await BuildAsync();
        _server.Time.Advance(TimeSpan.FromHours(3));
        var (exit, output, error) = await Run("history", "--context", Context, "--platform", "linux/amd64");
        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("LAYER", lines[0], StringComparison.Ordinal);
        Assert.Contains("COPY --from=build /src/app /app", lines[1], StringComparison.Ordinal);
        Assert.Contains("3 hours ago", lines[1], StringComparison.Ordinal);
        Assert.Contains("<config>", lines[3], StringComparison.Ordinal); // WORKDIR
        Assert.EndsWith("COPY src/ /src/", lines[4], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stats_and_delete_work_on_the_namespace()
    {
        await BuildAsync();
        var key = (await PlanJson()).GetProperty("steps")[0].GetProperty("key").GetString()!;
        var (_, stats, _) = await Run("stats", "--json");
        var json = JsonDocument.Parse(stats).RootElement;
        Assert.Equal(3, json.GetProperty("entries").GetInt64());
        Assert.True(json.GetProperty("hits").GetInt64() > 0);

        var (exit, output, _) = await Run("delete", "--key", key);
        Assert.Equal(0, exit);
        Assert.Contains("deleted 1 of 1", output, StringComparison.Ordinal);
        Assert.Equal("miss", (await PlanJson()).GetProperty("steps")[0].GetProperty("status").GetString());
    }

    [Fact]
    public async Task Key_computes_the_golden_vectors()
    {
        var vectors = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "testdata", "cache-keys", "v2.json"))).RootElement;
        foreach (var v in vectors.GetProperty("keys").EnumerateArray().Take(8))
        {
            List<string> args = ["key", "--parent", v.GetProperty("parentState").GetString()!, "--platform", v.GetProperty("platform").GetString()!, "--instruction", v.GetProperty("instruction").GetString()!];
            foreach (var arg in v.GetProperty("args").EnumerateArray())
            {
                args.AddRange(["--arg", $"{arg[0].GetString()}={arg[1].GetString()}"]);
            }

            if (v.GetProperty("sourcesDigest").GetString() is { } sources)
            {
                args.AddRange(["--sources", sources]);
            }

            var (exit, output, error) = await Run([.. args]);
            Assert.True(exit == 0, error);
            Assert.Equal(v.GetProperty("key").GetString(), output.Trim());
        }
    }

    [Theory]
    [InlineData("plan --bogus", "unknown option --bogus")]
    [InlineData("push --key sha256:00", "--key must be sha256")]
    [InlineData("push --key sha256:0000000000000000000000000000000000000000000000000000000000000000", "--layer FILE is required")]
    [InlineData("pull -o x", "give exactly one of --key and --digest")]
    [InlineData("frobnicate", "unknown command 'frobnicate'")]
    public async Task Usage_mistakes_exit_2_and_say_what_is_wrong(string commandLine, string message)
    {
        var (exit, _, error) = await Run(commandLine.Split(' '));
        Assert.Equal(LayercacheCli.Usage, exit);
        Assert.Contains(message, error, StringComparison.Ordinal);
        Assert.Contains("Usage: layercache", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failures_exit_1_and_name_the_cause()
    {
        var (exit, _, error) = await Run("pull", "--key", Layers.Key("never pushed"), "-o", Path.Combine(_dir, "x"));
        Assert.Equal(1, exit);
        Assert.Contains("is not cached in team/main", error, StringComparison.Ordinal);

        (exit, _, error) = await Run("plan", "--context", Path.Combine(_dir, "nowhere"));
        Assert.Equal(1, exit);
        Assert.Contains("no Dockerfile", error, StringComparison.Ordinal);

        await File.WriteAllTextAsync(Path.Combine(Context, "Dockerfile"), "FROM alpine@sha256:abababababababababababababababababababababababababababababababab\nCOPY missing.txt /\n");
        (exit, _, error) = await Run("plan", "--context", Context);
        Assert.Equal(1, exit);
        Assert.Contains("'missing.txt' does not exist in the build context", error, StringComparison.Ordinal);

        _index.Down = true; // the server answers; its index does not
        (exit, _, error) = await Run("stats");
        Assert.Equal(1, exit);
        Assert.Contains("the server is up but its index is unavailable", error, StringComparison.Ordinal);
        Assert.DoesNotContain("is it running", error, StringComparison.Ordinal);
        _index.Down = false;

        _environment["CACHESERVICE_ADDR"] = "127.0.0.1:1"; // nothing listens there
        (exit, _, error) = await Run("stats");
        Assert.Equal(1, exit);
        Assert.Contains("cannot reach the server", error, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task An_unreadable_directory_inside_a_copied_one_fails_the_plan_with_its_path_never_drops_out_of_the_key()
    {
        // Root reads everything, so the built CLI runs as nobody (setpriv), on a context nobody
        // may read all of. The plan fails before it asks any server.
        var root = Directory.CreateTempSubdirectory("cs-unreadable-").FullName;
        try
        {
            var context = Directory.CreateDirectory(Path.Combine(root, "ctx")).FullName;
            Directory.CreateDirectory(Path.Combine(context, "locked", "inner"));
            await File.WriteAllTextAsync(Path.Combine(context, "locked", "inner", "f"), "x");
            await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), "FROM scratch\nCOPY . /\n");
            var open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
            File.SetUnixFileMode(root, open);
            File.SetUnixFileMode(context, open);
            File.SetUnixFileMode(Path.Combine(context, "Dockerfile"), open);
            File.SetUnixFileMode(Path.Combine(context, "locked"), UnixFileMode.None);

            var layercache = Path.Combine(ServiceScripts.RepositoryRoot, "bin", "layercache");
            var (exit, output, error) = await Tools.RunAsync("setpriv", "util-linux", null,
                "--reuid=65534", "--regid=65534", "--clear-groups", layercache, "plan", "--context", context, "--server", "127.0.0.1:1");
            Assert.True(exit == 1, output + error);
            Assert.Contains(Path.Combine(context, "locked"), error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        }
        finally
        {
            File.SetUnixFileMode(Path.Combine(root, "ctx", "locked"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Help_is_available_for_every_command_and_exits_0()
    {
        foreach (var command in (string[])["plan", "build", "history", "push", "pull", "key", "stats", "delete", "token"])
        {
            var (exit, output, _) = await Run(command, "--help");
            Assert.Equal(0, exit);
            Assert.StartsWith($"Usage: layercache {command}", output, StringComparison.Ordinal);
            Assert.Contains("Exit codes", output, StringComparison.Ordinal);

            // Every option in the synopsis is described below it, one line each.
            var synopsis = output.Split('\n')[0];
            foreach (var option in System.Text.RegularExpressions.Regex.Matches(synopsis, "--[a-z-]+").Select(m => m.Value).Distinct())
            {
                Assert.Contains(output.Split('\n').Skip(1), l => l.TrimStart().StartsWith(option, StringComparison.Ordinal) || l.Contains(", " + option, StringComparison.Ordinal));
            }
        }

        var (_, key, _) = await Run("key", "--help");
        Assert.Contains("--parent STATE", key, StringComparison.Ordinal);
        Assert.Contains("the state below the step", key, StringComparison.Ordinal);

        // An option two commands mean differently is described as the command in hand means it.
        var (_, pull, _) = await Run("pull", "--help");
        Assert.Contains("-o, --output FILE", pull, StringComparison.Ordinal);
        Assert.DoesNotContain("OCI layout", pull, StringComparison.Ordinal);
        var (_, build, _) = await Run("build", "--help");
        Assert.Contains("OCI layout", build, StringComparison.Ordinal);
        Assert.DoesNotContain("the file to write", build, StringComparison.Ordinal);
        Assert.Contains("(repeatable)", (await Run("delete", "--help")).Out.Split('\n').Single(l => l.TrimStart().StartsWith("--key", StringComparison.Ordinal)), StringComparison.Ordinal);
        Assert.DoesNotContain("repeatable", pull.Split('\n').Single(l => l.TrimStart().StartsWith("--key", StringComparison.Ordinal)), StringComparison.Ordinal);

        // Commands that write or report one namespace offer no fallbacks; refusing one says so.
        foreach (var command in (string[])["push", "delete", "stats"])
        {
            var (_, help, _) = await Run(command, "--help");
            Assert.DoesNotContain("--fallback-namespace", help, StringComparison.Ordinal);
        }

        var (exit2, _, error) = await Run("stats", "--fallback-namespace", "team/other");
        Assert.Equal(LayercacheCli.Usage, exit2);
        Assert.Contains("--fallback-namespace", error, StringComparison.Ordinal);
        Assert.Contains("--help", (await Run("plan", "--help")).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_command_line_the_readme_shows_uses_options_its_command_takes()
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(ServiceScripts.RepositoryRoot, "README.md"));
        var helps = new Dictionary<string, string>(StringComparer.Ordinal);
        var checkedLines = 0;
        // "layercache COMMAND ..." up to the end of the command: a ';', a '`', a '#' comment or the line's end.
        foreach (System.Text.RegularExpressions.Match line in System.Text.RegularExpressions.Regex.Matches(readme, @"\blayercache ([a-z]+)([^;`#\n]*)"))
        {
            var command = line.Groups[1].Value;
            if (!helps.TryGetValue(command, out var help))
            {
                var (exit, output, error) = await Run(command, "--help");
                Assert.True(exit == 0, $"the README runs 'layercache {command}', which is no command: {error}");
                helps[command] = help = output;
            }

            foreach (var option in System.Text.RegularExpressions.Regex.Matches(line.Groups[2].Value, @"(?<=\s)--?[a-z][a-z-]*").Select(m => m.Value))
            {
                Assert.True(TakesOption(help, option), $"the README shows 'layercache {command} ... {option}', which {command} does not take");
            }

            checkedLines++;
        }

        Assert.True(checkedLines > 15, $"only {checkedLines} command lines found");

        // Options named in the CLI's sections of the prose are each taken by some command.
        var cli = readme[readme.IndexOf("## Builders: the `layercache` CLI", StringComparison.Ordinal)..readme.IndexOf("## Builders that cache in a registry", StringComparison.Ordinal)];
        // Not the CLI's: "COPY/ADD ... `--chown`/`--chmod`" are the Dockerfile's, "`--isolation chroot`" is how buildah is run.
        string[] othersFlags = ["--chown", "--chmod", "--isolation"];
        foreach (var option in System.Text.RegularExpressions.Regex.Matches(cli, @"`(--[a-z][a-z-]*)").Select(m => m.Groups[1].Value).Distinct().Except(othersFlags))
        {
            Assert.True(helps.Values.Any(h => TakesOption(h, option)), $"the README's CLI section names {option}, which no command takes");
        }
    }

    private static bool TakesOption(string help, string option) =>
        System.Text.RegularExpressions.Regex.IsMatch(help, $@"(?m)^  (-[a-z], )?{System.Text.RegularExpressions.Regex.Escape(option)}\b|^  {System.Text.RegularExpressions.Regex.Escape(option)},");

    [Fact]
    public async Task Push_prints_plain_progress_lines_when_not_on_a_terminal()
    {
        var layer = await LayerFileFor("progress", "progress");
        var (exit, output, error) = await Run("push", "--key", Layers.Key("progress"), "--layer", layer, "--json");
        Assert.True(exit == 0, error);
        Assert.Contains("push: 100% of", error, StringComparison.Ordinal);
        Assert.DoesNotContain('\r', error);
        var json = JsonDocument.Parse(output).RootElement;
        Assert.Equal("application/vnd.oci.image.layer.v1.tar", json.GetProperty("mediaType").GetString());
        Assert.True(json.GetProperty("created").GetBoolean());
    }
}
