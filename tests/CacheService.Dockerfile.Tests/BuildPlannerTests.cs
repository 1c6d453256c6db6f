using CacheService.Core;
using CacheService.Core.Keys;

namespace CacheService.Dockerfile.Tests;

/// <summary>
/// The build semantics that decide keys. Each semantic has a case that would be a wrong hit if
/// it were ignored (the key must move) and one that would be a needless miss if it were
/// over-keyed (the key must stay).
/// </summary>
public sealed class BuildPlannerTests : IDisposable
{
    private static readonly Digest Alpine = Digest.Of("alpine manifest"u8);
    private static readonly Digest OtherAlpine = Digest.Of("another alpine manifest"u8);

    private readonly string _context = Directory.CreateTempSubdirectory("cs-plan-").FullName;

    public BuildPlannerTests()
    {
        Write("go.mod", "module x");
        Write("src/main.go", "package main");
        Write("src/util.go", "package main // util");
        Write("docs/guide.md", "guide");
        Write("a.txt", "a");
        Write("b.txt", "b");
    }

    public void Dispose() => Directory.Delete(_context, recursive: true);

    private void Write(string path, string content)
    {
        var full = Path.Combine(_context, path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.WriteAllText(full, content);
    }

    private BuildPlan Plan(string dockerfile, BuildSettings? settings = null) =>
        BuildPlanner.Plan(DockerfileParser.Parse(dockerfile), new BuildContext(_context), settings ?? new BuildSettings());

    private Dictionary<string, Digest> Keys(string dockerfile, BuildSettings? settings = null) => PlanKeys.Of(Plan(dockerfile, settings));

    private static BuildSettings Args(params (string Name, string Value)[] args) =>
        new() { BuildArgs = args.ToDictionary(a => a.Name, a => a.Value), BaseImages = new Dictionary<string, Digest> { ["alpine"] = Alpine } };

    private const string ArgFile = """
        FROM alpine
        ARG VERSION=1
        COPY go.mod /src/
        RUN echo build
        """;

    [Fact]
    public void A_build_arg_moves_the_first_RUN_after_its_ARG_but_not_the_steps_before_it()
    {
        var defaults = Keys(ArgFile, Args());
        var changed = Keys(ArgFile, Args(("VERSION", "2")));
        Assert.Equal(defaults["0/0"], changed["0/0"]); // the ARG line itself
        Assert.Equal(defaults["0/1"], changed["0/1"]); // a COPY that does not use it
        Assert.NotEqual(defaults["0/2"], changed["0/2"]); // RUN sees VERSION in its environment
        Assert.Equal(Keys(ArgFile, Args(("VERSION", "1"))), defaults); // the default, given explicitly
    }

    [Fact]
    public void A_build_arg_no_ARG_declares_changes_nothing()
    {
        Assert.Equal(Keys(ArgFile, Args()), Keys(ArgFile, Args(("UNDECLARED", "x"))));
    }

    [Fact]
    public void A_global_ARG_reaches_FROM_but_a_stage_only_after_declaring_it_again()
    {
        const string undeclared = "ARG TAG=3.19\nFROM alpine:${TAG}\nRUN echo $TAG\n";
        const string declared = "ARG TAG=3.19\nFROM alpine:${TAG}\nARG TAG\nRUN echo $TAG\n";
        var settings = new BuildSettings { BaseImages = new Dictionary<string, Digest> { ["alpine:3.19"] = Alpine, ["alpine:3.20"] = Alpine } };
        var newer = settings with { BuildArgs = new Dictionary<string, string> { ["TAG"] = "3.20" } };

        // Both tags map to the same digest: the RUN of the stage that did not redeclare TAG keeps its key...
        Assert.Equal(Keys(undeclared, settings)["0/0"], Keys(undeclared, newer)["0/0"]);

        // ...and the one that did sees the new value.
        Assert.NotEqual(Keys(declared, settings)["0/1"], Keys(declared, newer)["0/1"]);

        // A stage-level redeclaration without a value takes the global default.
        var step = Plan(declared, settings).Stages[0].Steps[1];
        Assert.Contains(KeyValuePair.Create("TAG", "3.19"), step.Args);
    }

    [Fact]
    public void ENV_values_reach_the_steps_that_observe_them_and_an_ENV_built_from_an_ARG_follows_the_ARG()
    {
        const string file = "FROM alpine\nARG MODE=debug\nENV BUILD_MODE=$MODE\nCOPY go.mod /src/\nRUN make\nCOPY a.txt /$BUILD_MODE/\n";
        var debug = Keys(file, Args());
        var release = Keys(file, Args(("MODE", "release")));
        Assert.NotEqual(debug["0/1"], release["0/1"]); // the ENV step expands MODE
        Assert.Equal(debug["0/2"], release["0/2"]); // a COPY that names no variable does not observe the environment
        Assert.NotEqual(debug["0/3"], release["0/3"]); // a RUN's shell sees BUILD_MODE
        Assert.NotEqual(debug["0/4"], release["0/4"]); // a COPY that names it
        Assert.Equal(Keys("FROM alpine\nENV A=1\nRUN true\n", Args()), Keys("FROM  alpine\nENV   A=1\nRUN  true\n", Args()));
    }

    [Theory]
    [InlineData("LABEL version=2")]
    [InlineData("EXPOSE 8080")]
    [InlineData("CMD [\"/app\"]")]
    [InlineData("ENTRYPOINT [\"/app\"]")]
    [InlineData("STOPSIGNAL SIGKILL")]
    [InlineData("HEALTHCHECK CMD true")]
    [InlineData("MAINTAINER someone")]
    [InlineData("ONBUILD RUN true")]
    public void A_config_change_no_later_step_observes_keeps_the_later_keys(string metadata)
    {
        const string file = "FROM alpine\nCOPY go.mod /src/\n{0}RUN make\nCOPY a.txt /\n";
        var without = Keys(string.Format(System.Globalization.CultureInfo.InvariantCulture, file, string.Empty), Args());
        var with = Keys(string.Format(System.Globalization.CultureInfo.InvariantCulture, file, metadata + "\n"), Args());
        Assert.Equal(without["0/0"], with["0/0"]);
        Assert.Equal(without["0/1"], with["0/2"]); // RUN make, after the inserted line
        Assert.Equal(without["0/2"], with["0/3"]); // and the COPY after it, whose parent is RUN's layer

        // The twin: the same line where a RUN observes it (an ENV) moves the RUN.
        Assert.NotEqual(without["0/1"], Keys(string.Format(System.Globalization.CultureInfo.InvariantCulture, file, "ENV UNUSED=1\n"), Args())["0/2"]);
    }

    [Fact]
    public void A_LABEL_appended_to_a_stage_keeps_COPY_from_it_but_a_RUN_appended_moves_it()
    {
        const string file = "FROM alpine AS build\nRUN make\n{0}FROM alpine\nCOPY --from=build /out /out\n";
        string Of(string appended) => string.Format(System.Globalization.CultureInfo.InvariantCulture, file, appended);
        var plain = Keys(Of(string.Empty), Args());
        Assert.Equal(plain["1/0"], Keys(Of("LABEL stage=build\n"), Args())["1/0"]);
        Assert.NotEqual(plain["1/0"], Keys(Of("RUN make more\n"), Args())["1/0"]);
    }

    [Fact]
    public void USER_moves_a_later_RUN_and_WORKDIR_in_this_stage_and_the_next_but_not_a_COPY()
    {
        const string file = "FROM alpine AS base\nUSER {0}\nCOPY go.mod /src/\nRUN make\nWORKDIR /work\nFROM base\nRUN make\n";
        string Of(string user) => string.Format(System.Globalization.CultureInfo.InvariantCulture, file, user);
        var app = Keys(Of("app"), Args());
        var root = Keys(Of("root"), Args());
        Assert.Equal(app["base/1"], root["base/1"]); // COPY makes files owned by root whatever the USER
        Assert.NotEqual(app["base/2"], root["base/2"]); // a RUN runs as the user
        Assert.NotEqual(app["1/0"], root["1/0"]); // and a stage built on it inherits the user
        Assert.NotEqual(Keys(Of("app"), Args())["base/3"], Keys("FROM alpine AS base\nUSER app\nCOPY go.mod /src/\nRUN make\nUSER root\nWORKDIR /work\nFROM base\nRUN make\n", Args())["base/4"]);
        Assert.Contains(KeyValuePair.Create(CacheKeyV2.UserArg, "app"), Plan(Of("app"), Args()).Stages[0].Steps[2].Args);
    }

    [Fact]
    public void SHELL_moves_a_later_RUN_but_not_a_COPY()
    {
        const string file = "FROM alpine\nSHELL [\"{0}\", \"-c\"]\nCOPY go.mod /src/\nRUN make\n";
        string Of(string shell) => string.Format(System.Globalization.CultureInfo.InvariantCulture, file, shell);
        var sh = Keys(Of("/bin/sh"), Args());
        var bash = Keys(Of("/bin/bash"), Args());
        Assert.Equal(sh["0/1"], bash["0/1"]);
        Assert.NotEqual(sh["0/2"], bash["0/2"]);
        Assert.Equal(sh["0/2"], Keys("FROM alpine\nSHELL  [ \"/bin/sh\",\"-c\" ]\nCOPY go.mod /src/\nRUN make\n", Args())["0/2"]); // reformatted
    }

    [Theory]
    [InlineData("WORKDIR /other")]
    [InlineData("VOLUME /src")]
    public void WORKDIR_and_VOLUME_move_every_later_step(string line)
    {
        var before = Keys("FROM alpine\nWORKDIR /app\nCOPY go.mod src/\nRUN make\n", Args());
        var after = Keys($"FROM alpine\nWORKDIR /app\n{line}\nCOPY go.mod src/\nRUN make\n", Args());
        Assert.NotEqual(before["0/1"], after["0/2"]);
        Assert.NotEqual(before["0/2"], after["0/3"]);
    }

    [Fact]
    public void A_file_operation_after_scratch_is_shared_across_platforms_and_a_RUN_or_an_image_base_is_not()
    {
        const string scratch = "FROM scratch\nCOPY go.mod /\nWORKDIR /src\nCOPY a.txt .\nRUN make\n";
        var amd = Keys(scratch, Args());
        var arm = Keys(scratch, Args() with { Platform = "linux/arm64" });
        Assert.Equal(amd["0/0"], arm["0/0"]);
        Assert.Equal(amd["0/1"], arm["0/1"]);
        Assert.Equal(amd["0/2"], arm["0/2"]);
        Assert.NotEqual(amd["0/3"], arm["0/3"]);

        // A pinned base is a different image on each platform, even under one index digest.
        const string based = "FROM alpine\nCOPY go.mod /\n";
        Assert.NotEqual(Keys(based, Args())["0/0"], Keys(based, Args() with { Platform = "linux/arm64" })["0/0"]);
    }

    [Theory]
    [InlineData("linux/arm64/v8")]
    [InlineData("linux/aarch64")]
    [InlineData("Linux/ARM64")]
    public void Spellings_of_one_platform_share_every_key(string spelling) =>
        Assert.Equal(Keys("FROM alpine\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM\n", Args() with { Platform = "linux/arm64" }),
            Keys("FROM alpine\nARG TARGETPLATFORM\nRUN echo $TARGETPLATFORM\n", Args() with { Platform = spelling }));

    [Fact]
    public void A_stage_on_the_build_platform_keeps_its_keys_across_targets_except_where_it_reads_TARGET_args()
    {
        const string file = "FROM --platform=$BUILDPLATFORM alpine AS tools\nRUN make\nARG TARGETARCH\nRUN make $TARGETARCH\nFROM alpine\nCOPY --from=tools /out /out\n";
        var amd = Keys(file, Args() with { BuildPlatform = "linux/amd64" });
        var arm = Keys(file, Args() with { BuildPlatform = "linux/amd64", Platform = "linux/arm64" });
        Assert.Equal(amd["tools/0"], arm["tools/0"]);
        Assert.NotEqual(amd["tools/2"], arm["tools/2"]);
        Assert.NotEqual(amd["1/0"], arm["1/0"]);
        var otherBuilder = Keys(file, Args() with { BuildPlatform = "linux/arm64" });
        Assert.NotEqual(amd["tools/0"], otherBuilder["tools/0"]); // the tools run on another machine
    }

    [Fact]
    public void A_proxy_build_arg_counts_only_when_an_ARG_declares_it()
    {
        const string file = "FROM alpine\nRUN apk add curl\n";
        Assert.Equal(Keys(file, Args())["0/0"], Keys(file, Args(("HTTP_PROXY", "http://proxy:3128")))["0/0"]);
        const string declared = "FROM alpine\nARG HTTP_PROXY\nRUN apk add curl\n";
        Assert.NotEqual(Keys(declared, Args())["0/1"], Keys(declared, Args(("HTTP_PROXY", "http://proxy:3128")))["0/1"]);
    }

    [Fact]
    public void COPY_keys_follow_the_selected_files_only()
    {
        const string file = "FROM alpine\nCOPY src/ /src/\n";
        var before = Keys(file, Args());
        Write("docs/guide.md", "edited");
        Assert.Equal(before, Keys(file, Args())); // not selected
        Write("src/util.go", "package main // edited");
        Assert.NotEqual(before["0/0"], Keys(file, Args())["0/0"]);
    }

    [Fact]
    public void Dockerignore_hides_files_from_COPY_keys()
    {
        Write(".dockerignore", "src/*.go\n!src/main.go\n");
        const string file = "FROM alpine\nCOPY src/ /src/\n";
        var before = Keys(file, Args());
        Write("src/util.go", "package main // edited, but ignored");
        Assert.Equal(before, Keys(file, Args()));
        Write("src/main.go", "package main // edited, re-included by !");
        Assert.NotEqual(before["0/0"], Keys(file, Args())["0/0"]);
    }

    [Fact]
    public void Wildcard_sources_select_new_matching_files_and_ignore_others()
    {
        const string file = "FROM alpine\nCOPY *.txt /data/\n";
        var before = Keys(file, Args());
        Write("go.mod", "module y"); // does not match *.txt
        Assert.Equal(before, Keys(file, Args()));
        Write("c.txt", "c");
        Assert.NotEqual(before["0/0"], Keys(file, Args())["0/0"]);
        var error = Assert.Throws<InvalidFieldException>(() => Plan("FROM alpine\nCOPY *.none /data/\n", Args()));
        Assert.Contains("matches nothing", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void COPY_from_a_stage_follows_that_stages_final_state()
    {
        const string file = """
            FROM alpine AS build
            COPY src/ /src/
            RUN make
            FROM alpine AS docs
            COPY docs/ /docs/
            FROM scratch
            COPY --from=build /out/app /app
            """;
        var before = Keys(file, Args());
        Assert.DoesNotContain(Plan(file, Args()).Stages, s => s.Name == "docs"); // not needed by the target
        Write("docs/guide.md", "edited");
        Assert.Equal(before, Keys(file, Args()));
        Write("src/main.go", "package main // edited");
        Assert.NotEqual(before["2/0"], Keys(file, Args())["2/0"]);
    }

    [Fact]
    public void COPY_from_a_number_takes_the_stage_at_that_position_whatever_its_name()
    {
        const string file = """
            FROM alpine AS build
            COPY src/ /src/
            FROM scratch
            COPY --from=0 /src /app
            RUN --mount=type=bind,from=0,target=/b true
            """;
        var before = Keys(file, Args());
        Assert.Equal(0, Plan(file, Args()).Stages[1].Steps[0].Sources.Single().Stage);
        Write("docs/guide.md", "edited"); // no stage reads it
        Assert.Equal(before, Keys(file, Args()));
        Write("src/main.go", "package main // edited");
        var after = Keys(file, Args());
        Assert.NotEqual(before["1/0"], after["1/0"]);
        Assert.NotEqual(before["1/1"], after["1/1"]);
    }

    [Fact]
    public void A_stage_built_on_another_inherits_its_ENV_and_declared_ARGs()
    {
        Write("main.go", "a root file of the same name");
        const string file = """
            FROM alpine AS base
            ENV SRC=src
            ARG VERSION=1
            FROM base
            COPY ${SRC}/main.go /x
            RUN echo build
            """;
        var before = Keys(file, Args());
        Write("main.go", "edited root file"); // what ${SRC} would name without the parent's ENV
        Assert.Equal(before, Keys(file, Args()));
        Assert.Equal(before, Keys(file, Args(("OTHER", "2")))); // an arg nobody declared
        Write("src/main.go", "package main // edited");
        Assert.NotEqual(before["1/0"], Keys(file, Args())["1/0"]);
        var newArg = Keys(file, Args(("VERSION", "2")));
        Assert.NotEqual(Keys(file, Args())["1/1"], newArg["1/1"]); // the RUN sees the inherited ARG
    }

    [Fact]
    public void A_stage_built_on_another_runs_its_ONBUILD_triggers_first_keyed_by_what_they_read()
    {
        const string file = """
            FROM alpine AS base
            ENV DIR=/in
            ONBUILD COPY a.txt ${DIR}/
            ONBUILD RUN echo triggered
            FROM base
            RUN cat /in/a.txt
            """;
        var plan = Plan(file, Args());
        Assert.Equal(["COPY a.txt ${DIR}/", "RUN echo triggered", "RUN cat /in/a.txt"], plan.Stages[1].Steps.Select(s => s.Node.KeyText));
        var before = Keys(file, Args());
        Write("b.txt", "not read by any trigger");
        Assert.Equal(before, Keys(file, Args()));
        Write("a.txt", "edited");
        var after = Keys(file, Args());
        Assert.Equal(before["base/2"], after["base/2"]); // the base stage itself does not read a.txt
        Assert.NotEqual(before["1/0"], after["1/0"]);
        Assert.NotEqual(before["1/2"], after["1/2"]);
    }

    [Fact]
    public void The_target_stage_decides_which_stages_are_planned()
    {
        const string file = "FROM alpine AS base\nRUN a\nFROM base AS test\nRUN b\nFROM alpine AS release\nRUN c\n";
        Assert.Equal(["base", "test"], Plan(file, Args() with { Target = "test" }).Stages.Select(s => s.Name));
        Assert.Equal(["release"], Plan(file, Args()).Stages.Select(s => s.Name));
        Assert.Equal(0, Plan(file, Args() with { Target = "test" }).Stages[1].Base.Stage); // FROM base builds on stage 0
        var error = Assert.Throws<InvalidFieldException>(() => Plan(file, Args() with { Target = "nope" }));
        Assert.Equal("target", error.Field);
    }

    [Fact]
    public void FROM_pins_by_digest_by_base_mapping_or_warns_about_a_moving_tag()
    {
        var pinned = Plan($"FROM alpine:3.20@{Alpine}\nRUN true\n").Stages[0].Base.State;
        Assert.Equal(CacheKeyV2.ImageState(Alpine, "linux/amd64"), pinned);
        var mapped = Plan("FROM docker.io/library/alpine:latest\nRUN true\n", Args());
        Assert.Equal(CacheKeyV2.ImageState(Alpine, "linux/amd64"), mapped.Stages[0].Base.State); // "alpine" and its long form are one image
        Assert.Empty(mapped.Warnings);
        Assert.Equal(CacheKeyV2.ScratchState, Plan("FROM scratch\nRUN true\n").Stages[0].Base.State);

        var unpinned = Plan("FROM node:20\nRUN true\n");
        Assert.Contains(unpinned.Warnings, w => w.Contains("node:20 is not pinned", StringComparison.Ordinal));
        Assert.NotEqual(unpinned.Stages[0].Base.State, Plan("FROM node:22\nRUN true\n").Stages[0].Base.State);

        var other = new BuildSettings { BaseImages = new Dictionary<string, Digest> { ["alpine"] = OtherAlpine } };
        Assert.NotEqual(Keys("FROM alpine\nRUN true\n", Args())["0/0"], Keys("FROM alpine\nRUN true\n", other)["0/0"]);
    }

    [Fact]
    public void A_base_mapping_no_image_reference_uses_is_warned_of_and_a_used_one_is_not()
    {
        var settings = Args() with { BaseImages = new Dictionary<string, Digest> { ["alpine"] = Alpine, ["node:20"] = OtherAlpine } };
        var warnings = Plan("FROM docker.io/library/alpine:latest\nRUN true\n", settings).Warnings;
        Assert.Contains(warnings, w => w.StartsWith("--base node:20 is not used", StringComparison.Ordinal));
        Assert.DoesNotContain(warnings, w => w.Contains("alpine", StringComparison.Ordinal));
        Assert.Empty(Plan("FROM scratch\nCOPY --from=node:20 /x /x\nCOPY --from=alpine /y /y\n", settings).Warnings);
    }

    [Fact]
    public void RUN_with_a_bind_mount_of_the_context_follows_the_mounted_files_only()
    {
        const string mounted = "FROM alpine\nRUN --mount=type=bind,source=src,target=/src make\n";
        const string plain = "FROM alpine\nRUN --mount=type=cache,target=/root/.cache make\n";
        var before = Keys(mounted, Args());
        var plainBefore = Keys(plain, Args());
        Write("docs/guide.md", "edited");
        Assert.Equal(before, Keys(mounted, Args())); // outside the mounted source
        Write("src/main.go", "package main // edited");
        Assert.NotEqual(before["0/0"], Keys(mounted, Args())["0/0"]);
        Assert.Equal(plainBefore, Keys(plain, Args())); // a cache mount reads no context
    }

    [Fact]
    public void Heredoc_bodies_are_part_of_the_key()
    {
        const string file = "FROM alpine\nRUN <<EOF\necho one\nEOF\nCOPY go.mod /src/\n";
        var parsed = DockerfileParser.Parse(file);
        Assert.Equal(3, parsed.Instructions.Count); // the body is not read as instructions
        Assert.Equal("echo one\n", parsed.Instructions[1].Heredocs![0].Content);
        Assert.NotEqual(Keys(file, Args())["0/0"], Keys(file.Replace("echo one", "echo two", StringComparison.Ordinal), Args())["0/0"]);
    }

    [Fact]
    public void Reformatting_around_a_heredoc_keeps_the_key_and_its_body_whitespace_does_not()
    {
        var tidy = Keys("FROM alpine\nRUN <<EOF\necho  one\nEOF\n", Args());
        Assert.Equal(tidy, Keys("FROM alpine\nRUN   <<EOF\necho  one\nEOF\n", Args()));
        Assert.NotEqual(tidy, Keys("FROM alpine\nRUN <<EOF\necho one\nEOF\n", Args())); // the shell may see it
    }

    [Fact]
    public void Owner_and_mode_flags_count_in_any_order()
    {
        var chowned = Keys("FROM alpine\nCOPY --chown=1000:1000 --chmod=640 go.mod /src/\n", Args());
        Assert.Equal(chowned, Keys("FROM alpine\nCOPY --chmod=640 --chown=1000:1000 go.mod /src/\n", Args()));
        Assert.NotEqual(chowned, Keys("FROM alpine\nCOPY --chown=1000:1000 --chmod=644 go.mod /src/\n", Args()));
        Assert.NotEqual(chowned, Keys("FROM alpine\nCOPY --chown=0:0 --chmod=640 go.mod /src/\n", Args()));
    }

    [Fact]
    public void Heredocs_follow_BuildKits_rules_for_names_tabs_and_quotes()
    {
        var parsed = DockerfileParser.Parse("FROM alpine\nCOPY <<-\"A\" <<B /dst/\n\tone $X\n\tA\ntwo\nB\nRUN true\n");
        var copy = parsed.Instructions[1];
        Assert.Equal([new Heredoc("A", "one $X\n", Expand: false, Chomp: true), new Heredoc("B", "two\n", Expand: true, Chomp: false)], copy.Heredocs);
        Assert.Equal(6, copy.EndLine);
        Assert.Equal("run", parsed.Instructions[2].Keyword);
        Assert.Empty(Plan("FROM alpine\nCOPY <<EOF /etc/conf\nx=1\nEOF\n").Stages[0].Steps[0].Sources); // no context read
        Assert.Throws<DockerfileSyntaxException>(() => DockerfileParser.Parse("FROM alpine\nRUN <<EOF\necho\n"));
    }

    [Fact]
    public void Automatic_platform_args_follow_the_platform_when_declared()
    {
        const string file = "FROM alpine\nARG TARGETARCH\nRUN echo $TARGETARCH\n";
        var amd = Plan(file, Args()).Stages[0].Steps[1];
        Assert.Contains(KeyValuePair.Create("TARGETARCH", "amd64"), amd.Args);
        var arm = Plan(file, Args() with { Platform = "linux/arm64" }).Stages[0].Steps[1];
        Assert.Contains(KeyValuePair.Create("TARGETARCH", "arm64"), arm.Args);
    }

    [Fact]
    public void ADD_of_a_URL_without_checksum_warns_that_its_content_is_not_checked()
    {
        var plan = Plan("FROM alpine\nADD https://example.com/tool.tgz /opt/\n", Args());
        Assert.Contains(plan.Warnings, w => w.Contains("keyed by its URL", StringComparison.Ordinal));
        Assert.Empty(Plan("FROM alpine\nADD --checksum=sha256:abc https://example.com/tool.tgz /opt/\n", Args()).Warnings);
    }

    [Fact]
    public void Variables_expand_the_way_Dockerfiles_expand_them()
    {
        string? Lookup(string name) => name switch { "A" => "x", "EMPTY" => "", _ => null };
        Assert.Equal("x-x", Variables.Expand("$A-${A}", Lookup));
        Assert.Equal("d|x|", Variables.Expand("${UNSET:-d}|${A:-d}|${UNSET:+alt}", Lookup));
        Assert.Equal("d|", Variables.Expand("${EMPTY:-d}|${EMPTY-d}", Lookup));
        Assert.Equal("$A x", Variables.Expand("'$A' \"$A\"", Lookup));
        Assert.Equal("$A", Variables.Expand("\\$A", Lookup));
    }
}
