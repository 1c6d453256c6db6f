using CacheService.Core;

namespace CacheService.Dockerfile.Tests;

/// <summary>
/// Over generated contexts and Dockerfiles (symlinks to files and directories, links inside copied
/// directories, stages built from stages with ONBUILD triggers, <c>COPY --from</c> by index and by
/// name, bind mounts, <c>--chmod</c>), every edit of something a step can read moves that step's
/// key, and every other edit keeps it. What a step can read is modelled here independently of the
/// planner: its own sources, everything before it in its stage, the stage it is built on and the
/// stages it copies from.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // modes and symlinks are the point
public sealed class KeyPropertyTests : IDisposable
{
    private static readonly string[] Sources = ["t0", "t1", "t2", "d0", "d1", "d0/f1", "d1/f2", "l0", "l1", "l1/f0", "d0/f*"];

    private readonly string _context = Directory.CreateTempSubdirectory("cs-keyprop-").FullName;

    public void Dispose() => Directory.Delete(_context, recursive: true);

    public static TheoryData<int> Seeds()
    {
        var seeds = new TheoryData<int>();
        for (var seed = 0; seed < 40; seed++)
        {
            seeds.Add(seed);
        }

        return seeds;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Every_edit_a_step_can_observe_moves_its_key_and_no_other_edit_does(int seed)
    {
        var (dockerfile, reads) = Generate(new Random(seed));
        WriteContext();
        var before = Keys(dockerfile);
        Assert.Equal(reads.Keys.Order(StringComparer.Ordinal), before.Keys.Order(StringComparer.Ordinal));
        foreach (var edit in Edits())
        {
            WriteContext();
            Apply(edit);
            var after = Keys(dockerfile);
            foreach (var (step, observed) in reads)
            {
                var moved = before[step] != after[step];
                Assert.True(moved == observed.Contains(edit), $"{edit} should {(moved ? "keep" : "move")} the key of {step} in:\n{dockerfile}");
            }
        }
    }

    /// <summary>One change to the context: a file's content or mode, or where a link points.</summary>
    private sealed record Edit(string Path, string How);

    private Dictionary<string, Digest> Keys(string dockerfile) =>
        PlanKeys.Of(BuildPlanner.Plan(DockerfileParser.Parse(dockerfile), new BuildContext(_context), new BuildSettings()));

    // Top-level files t0..t3, directories d0 and d1 with f0..f2, l0 -> d0/f1, l1 -> d1, and a
    // link inside d1 (copied as a link) to ../t0. Each file holds its own path.
    private void WriteContext()
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(_context))
        {
            if (Directory.Exists(entry) && new DirectoryInfo(entry).LinkTarget is null)
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }

        foreach (var path in Files())
        {
            var full = Path.Combine(_context, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, path);
            File.SetUnixFileMode(full, (UnixFileMode)Convert.ToInt32("644", 8));
        }

        File.CreateSymbolicLink(Path.Combine(_context, "l0"), "d0/f1");
        Directory.CreateSymbolicLink(Path.Combine(_context, "l1"), "d1");
        File.CreateSymbolicLink(Path.Combine(_context, "d1", "in"), "../t0");
    }

    private static IEnumerable<string> Files() =>
        Enumerable.Range(0, 4).Select(i => $"t{i}").Concat(from d in (string[])["d0", "d1"] from j in Enumerable.Range(0, 3) select $"{d}/f{j}");

    private static IEnumerable<Edit> Edits() =>
        Files().SelectMany(f => (Edit[])[new(f, "content"), new(f, "mode")])
            .Concat([new("l0", "target"), new("l1", "target"), new("d1/in", "target")]);

    private void Apply(Edit edit)
    {
        var full = Path.Combine(_context, edit.Path);
        switch (edit.How)
        {
            case "content":
                File.AppendAllText(full, " edited");
                break;
            case "mode":
                File.SetUnixFileMode(full, (UnixFileMode)Convert.ToInt32("755", 8));
                break;
            default:
                File.Delete(full);
                var (target, directory) = edit.Path switch { "l0" => ("d0/f2", false), "l1" => ("d0", true), _ => ("../t1", false) };
                _ = directory ? Directory.CreateSymbolicLink(full, target) : File.CreateSymbolicLink(full, target);
                break;
        }
    }

    // What copying or mounting `source` reads: files' content (and mode, unless --chmod sets it),
    // where each link on the way points, and the text of links inside a copied directory.
    private static IEnumerable<Edit> Reads(string source, bool chmod)
    {
        IEnumerable<Edit> OneFile(string path) => chmod ? [new(path, "content")] : [new(path, "content"), new(path, "mode")];
        IEnumerable<Edit> Directory(string dir) =>
            Enumerable.Range(0, 3).SelectMany(j => OneFile($"{dir}/f{j}")).Concat(dir == "d1" ? [new Edit("d1/in", "target")] : []);
        return source switch
        {
            "l0" => [.. OneFile("d0/f1"), new("l0", "target")],
            "l1" => [.. Directory("d1"), new("l1", "target")],
            "d0" or "d1" or "d0/f*" => Directory(source[..2]),
            _ when source.StartsWith("l1/", StringComparison.Ordinal) => [.. OneFile("d1/" + source[3..]), new("l1", "target")],
            _ => OneFile(source),
        };
    }

    // A Dockerfile of three stages and, for each step ("stage/index"), every edit it can observe.
    private static (string Dockerfile, Dictionary<string, HashSet<Edit>> Reads) Generate(Random random)
    {
        var counter = 0;
        string Pick() => Sources[random.Next(Sources.Length)];

        // A stage body: copies, bind mounts, plain RUNs and steps that read nothing.
        List<(string Line, IEnumerable<Edit> Own)> Body()
        {
            var body = new List<(string, IEnumerable<Edit>)>();
            for (var n = random.Next(2, 5); n > 0; n--)
            {
                var id = counter++;
                var source = Pick();
                var chmod = random.Next(3) == 0;
                body.Add(random.Next(5) switch
                {
                    0 or 1 => ($"COPY {(chmod ? "--chmod=644 " : string.Empty)}{source} /dst{id}/", Reads(source, chmod)),
                    2 when !source.Contains('*', StringComparison.Ordinal) => ($"RUN --mount=type=bind,source={source},target=/m make{id}", Reads(source, false)),
                    3 => ($"ENV V{id}={id}", []),
                    _ => ($"RUN make{id}", []),
                });
            }

            return body;
        }

        var trigger = random.Next(2) == 0 ? Pick() : null;
        var baseBody = Body();
        var midOnBase = random.Next(2) == 0;
        var midBody = Body();
        var finalBody = Body();

        var text = new System.Text.StringBuilder("FROM scratch AS base\n");
        foreach (var (line, _) in baseBody)
        {
            text.Append(line).Append('\n');
        }

        if (trigger is not null)
        {
            text.Append($"ONBUILD COPY {trigger} /onbuild/\n");
        }

        text.Append(midOnBase ? "FROM base AS mid\n" : "FROM scratch AS mid\n");
        foreach (var (line, _) in midBody)
        {
            text.Append(line).Append('\n');
        }

        var fromBase = random.Next(2) == 0 ? "0" : "base";
        var fromMid = random.Next(2) == 0 ? "1" : "mid";
        text.Append($"FROM scratch\nCOPY --from={fromBase} /x /x\nCOPY --from={fromMid} /y /y\n");
        foreach (var (line, _) in finalBody)
        {
            text.Append(line).Append('\n');
        }

        // Each step observes what it reads, everything before it in its stage and what its stage
        // is built on; a COPY --from observes that whole stage.
        var reads = new Dictionary<string, HashSet<Edit>>();
        HashSet<Edit> Walk(string stage, HashSet<Edit> start, IEnumerable<IEnumerable<Edit>> steps)
        {
            var seen = new HashSet<Edit>(start);
            var index = 0;
            foreach (var own in steps)
            {
                seen.UnionWith(own);
                reads[$"{stage}/{index++}"] = [.. seen];
            }

            return seen;
        }

        var baseSteps = baseBody.Select(s => s.Own).ToList();
        if (trigger is not null)
        {
            baseSteps.Add([]); // the ONBUILD line itself reads nothing
        }

        var baseFinal = Walk("base", [], baseSteps);
        var midSteps = midBody.Select(s => s.Own).ToList();
        if (midOnBase && trigger is not null)
        {
            midSteps.Insert(0, Reads(trigger, chmod: false));
        }

        var midFinal = Walk("mid", midOnBase ? baseFinal : [], midSteps);
        Walk("2", [], [baseFinal, midFinal, .. finalBody.Select(s => s.Own)]);
        return (text.ToString(), reads);
    }
}
