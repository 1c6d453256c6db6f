using System.Diagnostics;
using CacheService.Core;

namespace CacheService.Dockerfile.Tests;

/// <summary>
/// A bounded fuzz of the front end: a few hundred Dockerfiles made from BuildKit's parser corpus
/// by a fixed seed (lines dropped, doubled, cut and spliced with hostile fragments), each parsed
/// and planned against a context holding links out of it and a loop. Every one must end in a plan
/// or a clean refusal, in bounded time and memory, and no key may depend on a canary file beside
/// the context: editing it keeps every key of every plan.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FrontEndFuzzTests : IDisposable
{
    private static readonly string[] Fragments =
    [
        "COPY ../canary/canary.txt /x", "COPY ${UNSET:-..}/canary/canary.txt /x", "COPY out/canary.txt /x", "COPY out /x", "COPY . /src",
        "COPY loop /x", "COPY * /x", "COPY [z-a]* /x", "COPY []x /x", "COPY --chmod=99999999999 a.txt /", "COPY --from= /x /x",
        "FROM $UNSET", "FROM scratch AS s", "FROM s", "ENV A=$A$A$A$A", "ENV A=${A:-${A:-${A}}}", "ARG V", "COPY ${V:} /", "RUN [\"\\ud800\"]",
        "ONBUILD COPY ../canary /x", "COPY --from=0 / /", "COPY --from=99 / /", "RUN --mount=type=bind,source=out,target=/m true",
        "WORKDIR ${A}", "USER ${A:+x}", "SHELL [\"/bin/sh\", \"-c\"]", "RUN a \\", "# escape=`", "COPY a\u0000b /", "ADD https://x/y /y",
        "COPY " + string.Concat(Enumerable.Repeat("a*", 25)) + "b /", "RUN <<EOF", "EOF", "COPY --parents . /", "LABEL a=b \\",
    ];

    private readonly string _root = Directory.CreateTempSubdirectory("cs-fuzz-").FullName;

    public FrontEndFuzzTests()
    {
        Directory.CreateDirectory(Canary);
        File.WriteAllText(Path.Combine(Canary, "canary.txt"), "before");
        Directory.CreateDirectory(Path.Combine(Context, "sub"));
        File.WriteAllText(Path.Combine(Context, "a.txt"), "a");
        File.WriteAllText(Path.Combine(Context, "sub", "b.txt"), "b");
        Directory.CreateSymbolicLink(Path.Combine(Context, "out"), Canary); // an absolute link: resolves inside the context
        Directory.CreateSymbolicLink(Path.Combine(Context, "rel"), "../canary"); // a relative one that climbs out
        File.CreateSymbolicLink(Path.Combine(Context, "loop"), "loop");
        Directory.CreateSymbolicLink(Path.Combine(Context, "sub", "up"), ".."); // a directory loop for walks
    }

    private string Context => Path.Combine(_root, "ctx");

    private string Canary => Path.Combine(_root, "canary");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void Three_hundred_generated_Dockerfiles_end_cleanly_in_bounded_time_and_none_reads_outside_the_context()
    {
        var corpus = Directory.GetDirectories(Path.Combine(AppContext.BaseDirectory, "testdata", "buildkit-dockerfile-parser", "testfiles"))
            .Select(d => File.ReadAllText(Path.Combine(d, "Dockerfile")).Split('\n')).ToList();
        var random = new Random(19);
        var outcomes = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < 300; i++)
        {
            var text = Mutate(corpus[random.Next(corpus.Count)], random);
            File.WriteAllText(Path.Combine(Canary, "canary.txt"), "before");
            var before = Run(text, out var outcome);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
            if (before is null)
            {
                continue;
            }

            File.WriteAllText(Path.Combine(Canary, "canary.txt"), "after, longer");
            var after = Run(text, out _);
            Assert.True(after is not null && before.SequenceEqual(after), $"a key moved with a file outside the context:\n{text}");
        }

        Assert.True(outcomes.GetValueOrDefault("planned") >= 30, "too few inputs planned to test the canary: " + string.Join(", ", outcomes));
        Assert.True(outcomes.Count >= 2, string.Join(", ", outcomes));
    }

    // The keys of a plan, or null for a clean refusal; anything else fails the test with the input.
    private Dictionary<string, Digest>? Run(string text, out string outcome)
    {
        var clock = Stopwatch.StartNew();
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            var keys = PlanKeys.Of(BuildPlanner.Plan(DockerfileParser.Parse(text), new BuildContext(Context), new BuildSettings()));
            outcome = "planned";
            return keys;
        }
        catch (Exception e) when (e is DockerfileSyntaxException or InvalidFieldException)
        {
            outcome = e.GetType().Name;
            return null;
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{e.GetType().Name}: {e.Message}\nfor:\n{text}");
        }
        finally
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed} for:\n{text}");
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - allocated < 256L << 20, $"allocated over 256 MB for:\n{text}");
        }
    }

    private static string Mutate(string[] lines, Random random)
    {
        var result = lines.ToList();
        for (var n = random.Next(1, 6); n > 0; n--)
        {
            var at = random.Next(result.Count + 1);
            switch (random.Next(5))
            {
                case 0 when result.Count > 1:
                    result.RemoveAt(Math.Min(at, result.Count - 1));
                    break;
                case 1 when result.Count > 0:
                    result.Insert(at, result[Math.Min(at, result.Count - 1)]);
                    break;
                case 2 when result.Count > 0:
                    var line = result[Math.Min(at, result.Count - 1)];
                    result[Math.Min(at, result.Count - 1)] = line[..random.Next(line.Length + 1)];
                    break;
                default:
                    result.Insert(at, Fragments[random.Next(Fragments.Length)]);
                    break;
            }
        }

        if (random.Next(3) == 0)
        {
            result.Insert(0, "FROM scratch"); // so more inputs reach the planner
        }

        return string.Join('\n', result) + "\n";
    }
}
