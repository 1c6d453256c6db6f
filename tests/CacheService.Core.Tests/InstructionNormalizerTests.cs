using CacheService.Core.Keys;

namespace CacheService.Core.Tests;

public class InstructionNormalizerTests
{
    [Theory]
    [InlineData("run  echo   hi", "RUN echo hi")]
    [InlineData("RUN foo \\\n\nbar \\\n\nbaz", "RUN foo bar baz")]
    [InlineData("ENV E hello\\\n\\\nworld", "ENV E helloworld")]
    [InlineData("ENV F hello\\\n \\\nworld", "ENV F hello world")]
    [InlineData("ENV C trailing\\\\backslash\\\\", "ENV C trailing\\\\backslash\\\\")]
    [InlineData("RUN echo a\\ \\ b", "RUN echo a\\ \\ b")]
    [InlineData("COPY --from=build --link a b", "COPY --from=build --link a b")]
    [InlineData("RUN [\"a\"] extra", "RUN [\"a\"] extra")]
    [InlineData("RUN [\"a\", 1]", "RUN [\"a\", 1]")]
    [InlineData("RUN []", "RUN []")]
    [InlineData("COPY <<EOF /x\n  keep   this\nEOF", "COPY <<EOF /x\n  keep   this\nEOF")]
    [InlineData("ENV A=<<B", "ENV A=<<B")]
    public void Normalizes_as_documented(string raw, string expected) =>
        Assert.Equal(expected, InstructionNormalizer.Normalize(raw));

    [Theory]
    [InlineData("run  echo   \"a  b\"  \\\n  && true")]
    [InlineData("RUN <<EOF\n  a  \nEOF")]
    [InlineData("CMD [ \"x\" , \"y\\n\" ]")]
    [InlineData("copy --link   --chmod=1 a b")]
    public void Is_idempotent(string raw)
    {
        var once = InstructionNormalizer.Normalize(raw);
        Assert.Equal(once, InstructionNormalizer.Normalize(once));
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t ")]
    public void An_empty_instruction_is_refused(string raw)
    {
        var e = Assert.Throws<InvalidFieldException>(() => InstructionNormalizer.Normalize(raw));
        Assert.Equal("instruction", e.Field);
    }

    [Theory]
    [InlineData("RUN x", true)]
    [InlineData("COPY a b", true)]
    [InlineData("ADD a b", true)]
    [InlineData("ENV a=b", false)]
    [InlineData("WORKDIR /x", false)]
    [InlineData("RUNNER x", false)]
    public void Knows_which_steps_add_a_layer(string instruction, bool layer) =>
        Assert.Equal(layer, InstructionNormalizer.IsLayerStep(InstructionNormalizer.Normalize(instruction)));
}
