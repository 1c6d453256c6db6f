using CacheService.Core.Keys;

namespace CacheService.Dockerfile.Tests;

/// <summary>
/// The key's instruction normalizer and the parser must agree on where an instruction starts
/// and ends: normalizing the raw lines of an instruction gives the same text as normalizing the
/// parser's joined line, for every instruction of the BuildKit corpus.
/// </summary>
public class KeyNormalizationAgreementTests
{
    public static TheoryData<string> Positive() => BuildKitCorpusTests.Positive();

    [Theory]
    [MemberData(nameof(Positive))]
    public void Raw_lines_and_the_parsed_line_normalize_alike(string name)
    {
        var text = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testdata", "buildkit-dockerfile-parser", "testfiles", name, "Dockerfile"));
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        var parsed = DockerfileParser.Parse(text);
        foreach (var node in parsed.Instructions)
        {
            var raw = string.Join('\n', lines[(node.StartLine - 1)..node.EndLine]).TrimStart();
            Assert.Equal(
                InstructionNormalizer.Normalize(node.Original, parsed.Escape),
                InstructionNormalizer.Normalize(raw, parsed.Escape));
        }
    }
}
