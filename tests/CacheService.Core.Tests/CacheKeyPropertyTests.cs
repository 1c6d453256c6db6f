using CacheService.Core.Keys;

namespace CacheService.Core.Tests;

/// <summary>The properties DESIGN.md §2 asks of keys: zero false hits, few false misses.</summary>
public class CacheKeyPropertyTests
{
    private static readonly Digest Base = Digest.Of("base image"u8);
    private static readonly Digest Sources = Digest.Of("sources"u8);
    private static readonly Digest OtherSources = Digest.Of("other sources"u8);

    private static Digest Key(string instruction, Digest? parent = null, string platform = "linux/amd64",
        IReadOnlyList<KeyValuePair<string, string>>? args = null, Digest? sources = null) =>
        CacheKeyV2.Compute(new StepKeyInput(parent ?? Base, platform, instruction, args ?? [], sources)).Key;

    private static KeyValuePair<string, string> Arg(string name, string value) => KeyValuePair.Create(name, value);

    [Theory]
    [InlineData("RUN apt-get update && apt-get install -y curl", "run   apt-get update &&  \\\n   apt-get install -y curl  ")]
    [InlineData("RUN a b", "RUN a \\\n# a comment the command never sees\n\n  b")]
    [InlineData("COPY --chown=1:1 --chmod=644 a /a", "copy --chmod=644   --chown=1:1 a /a")]
    [InlineData("CMD [\"a\",\"b c\"]", "CMD [ \"a\" ,  \"b c\" ]")]
    [InlineData("ENV A=1", "\tENV   A=1\t")]
    [InlineData("RUN echo hi", "RUN echo hi\r\n")]
    public void Reformatting_keeps_the_key(string canonical, string reformatted) =>
        Assert.Equal(Key(canonical), Key(reformatted));

    [Theory]
    [InlineData("RUN echo \"a b\"", "RUN echo \"a  b\"")]
    [InlineData("RUN echo 'a b'", "RUN echo 'a  b'")]
    [InlineData("RUN [\"echo\",\"hi\"]", "RUN echo hi")]
    [InlineData("RUN echo a", "RUN echo b")]
    [InlineData("RUN echo a", "CMD echo a")]
    [InlineData("COPY --chmod=644 a /a", "COPY --chmod=755 a /a")]
    [InlineData("RUN a\\\nb", "RUN a b")]
    [InlineData("RUN <<EOF\necho  a\nEOF", "RUN <<EOF\necho a\nEOF")]
    [InlineData("RUN echo A", "RUN echo a")]
    public void A_semantic_change_in_the_instruction_changes_the_key(string one, string other) =>
        Assert.NotEqual(Key(one), Key(other));

    [Fact]
    public void Every_other_input_is_part_of_the_key()
    {
        var reference = Key("RUN make", args: [Arg("V", "1")], sources: Sources);
        Assert.NotEqual(reference, Key("RUN make", parent: Digest.Of("other base"u8), args: [Arg("V", "1")], sources: Sources));
        Assert.NotEqual(reference, Key("RUN make", platform: "linux/arm64", args: [Arg("V", "1")], sources: Sources));
        Assert.NotEqual(reference, Key("RUN make", args: [Arg("V", "2")], sources: Sources));
        Assert.NotEqual(reference, Key("RUN make", args: [Arg("W", "1")], sources: Sources));
        Assert.NotEqual(reference, Key("RUN make", args: [Arg("V", "1"), Arg("X", "")], sources: Sources));
        Assert.NotEqual(reference, Key("RUN make", args: [], sources: Sources));
        Assert.NotEqual(reference, Key("RUN make", args: [Arg("V", "1")], sources: OtherSources));
        Assert.NotEqual(reference, Key("RUN make", args: [Arg("V", "1")], sources: null));
    }

    [Theory]
    [InlineData("COPY a /a")]
    [InlineData("ADD https://example.com/a.tgz /a")]
    [InlineData("WORKDIR /src")]
    public void A_file_operation_is_the_same_on_every_platform_but_not_on_another_parent(string instruction)
    {
        Assert.Equal(Key(instruction, sources: Sources), Key(instruction, platform: "linux/arm64", sources: Sources));
        Assert.NotEqual(Key(instruction, sources: Sources), Key(instruction, parent: CacheKeyV2.ImageState(Base, "linux/arm64"), sources: Sources));
    }

    [Theory]
    [InlineData("linux/arm64/v8", "linux/arm64")]
    [InlineData("Linux/AArch64", "linux/arm64")]
    [InlineData("linux/x86_64", "linux/amd64")]
    [InlineData("linux/arm", "linux/arm/v7")]
    public void Spellings_of_one_platform_make_one_key_and_one_base_state(string spelling, string canonical)
    {
        Assert.Equal(Key("RUN make", platform: canonical), Key("RUN make", platform: spelling));
        Assert.Equal(CacheKeyV2.ImageState(Base, canonical), CacheKeyV2.ImageState(Base, spelling));
    }

    [Fact]
    public void One_image_digest_is_a_different_base_on_each_platform() =>
        Assert.NotEqual(CacheKeyV2.ImageState(Base, "linux/amd64"), CacheKeyV2.ImageState(Base, "linux/arm64"));

    [Fact]
    public void No_v1_key_or_state_can_equal_a_v2_one()
    {
        // Every domain tag names v2; a v1 preimage started with F("cacheservice/key/v1"), so the
        // hashed bytes of the two versions differ from the first field on.
        var step = CacheKeyV2.Compute(new StepKeyInput(Base, "linux/amd64", "RUN make", [], null));
        Assert.Equal("cacheservice/key/v2", System.Text.Encoding.UTF8.GetString(step.Preimage.AsSpan(4, 19)));
        string[] domains = [CacheKeyV2.KeyDomain, CacheKeyV2.LayerStateDomain, CacheKeyV2.ConfigStateDomain, CacheKeyV2.ScratchDomain, CacheKeyV2.ImageDomain];
        Assert.All(domains, d => Assert.Contains("/v2", d, StringComparison.Ordinal));
    }

    [Fact]
    public void Arg_order_does_not_matter() =>
        Assert.Equal(Key("RUN make", args: [Arg("A", "1"), Arg("B", "2")]), Key("RUN make", args: [Arg("B", "2"), Arg("A", "1")]));

    [Fact]
    public void Moving_text_between_name_and_value_changes_the_key() =>
        Assert.NotEqual(Key("RUN x", args: [Arg("AB", "C")]), Key("RUN x", args: [Arg("A", "BC")]));

    [Fact]
    public void A_repeated_arg_name_is_refused()
    {
        var e = Assert.Throws<InvalidFieldException>(() => Key("RUN x", args: [Arg("A", "1"), Arg("A", "2")]));
        Assert.Equal("args", e.Field);
    }

    [Theory]
    [InlineData("")]
    [InlineData("linux")]
    [InlineData("linux/amd64/v8/extra")]
    [InlineData("linux//amd64")]
    public void A_malformed_platform_is_refused(string platform)
    {
        var e = Assert.Throws<InvalidFieldException>(() => Key("RUN x", platform: platform));
        Assert.Equal("platform", e.Field);
    }

    [Fact]
    public void Two_parents_with_identical_top_layers_never_share_a_child_key()
    {
        var layer = Digest.Of("same layer"u8);
        var step = CacheKeyV2.Compute(new StepKeyInput(Base, "linux/amd64", "RUN make", [], null));
        var stateA = CacheKeyV2.NextState(Base, step, layer);
        var stateB = CacheKeyV2.NextState(Digest.Of("another base"u8), step, layer);
        Assert.NotEqual(Key("RUN test", parent: stateA), Key("RUN test", parent: stateB));
    }

    [Fact]
    public void The_state_after_a_layer_step_follows_the_layer_produced()
    {
        var step = CacheKeyV2.Compute(new StepKeyInput(Base, "linux/amd64", "RUN make", [], null));
        Assert.NotEqual(CacheKeyV2.NextState(Base, step, Digest.Of("a"u8)), CacheKeyV2.NextState(Base, step, Digest.Of("b"u8)));
        Assert.Throws<ArgumentException>(() => CacheKeyV2.NextState(Base, step, null));
    }

    [Fact]
    public void A_change_at_a_layer_or_config_step_k_changes_keys_k_to_n_and_a_metadata_step_only_its_own()
    {
        string[] dockerfile = ["COPY app /app", "ENV MODE=release", "RUN make", "WORKDIR /app", "RUN make test", "CMD [\"/app/run\"]"];
        for (var k = 0; k < dockerfile.Length; k++)
        {
            var edited = (string[])dockerfile.Clone();
            edited[k] += " --changed";
            var before = ChainKeys(dockerfile);
            var after = ChainKeys(edited);
            // A metadata step (ENV, CMD) leaves the state: later steps observe it only through
            // their own args, which the planner gives them (docs/cache-key.md).
            var metadata = dockerfile[k].StartsWith("ENV", StringComparison.Ordinal) || dockerfile[k].StartsWith("CMD", StringComparison.Ordinal);
            for (var i = 0; i < dockerfile.Length; i++)
            {
                if (i < k || (i > k && metadata))
                {
                    Assert.Equal(before[i], after[i]);
                }
                else
                {
                    Assert.NotEqual(before[i], after[i]);
                }
            }
        }
    }

    [Fact]
    public void Editing_a_file_no_step_selects_changes_no_key()
    {
        // A file outside every COPY's selection does not enter any sources digest, so the same
        // digests yield the same keys; a selected file's edit changes only its step and later ones.
        string[] dockerfile = ["COPY a /a", "RUN build", "COPY b /b", "RUN test"];
        var unchanged = ChainKeys(dockerfile, stepSources: i => Digest.Of(System.Text.Encoding.UTF8.GetBytes($"selection {i}")));
        var again = ChainKeys(dockerfile, stepSources: i => Digest.Of(System.Text.Encoding.UTF8.GetBytes($"selection {i}")));
        Assert.Equal(unchanged, again);
        var secondCopyEdited = ChainKeys(dockerfile, stepSources: i => Digest.Of(System.Text.Encoding.UTF8.GetBytes(i == 2 ? "edited" : $"selection {i}")));
        Assert.Equal(unchanged[..2], secondCopyEdited[..2]);
        Assert.NotEqual(unchanged[2], secondCopyEdited[2]);
        Assert.NotEqual(unchanged[3], secondCopyEdited[3]);
    }

    // Keys of a whole Dockerfile, where each layer step produces a layer that depends on its key
    // (as a real build's output depends on its inputs).
    private static List<Digest> ChainKeys(string[] steps, Func<int, Digest>? stepSources = null)
    {
        var keys = new List<Digest>();
        var state = Base;
        for (var i = 0; i < steps.Length; i++)
        {
            Digest? sources = steps[i].StartsWith("COPY", StringComparison.Ordinal) ? stepSources?.Invoke(i) ?? Sources : null;
            var step = CacheKeyV2.Compute(new StepKeyInput(state, "linux/amd64", steps[i], [], sources));
            keys.Add(step.Key);
            state = CacheKeyV2.NextState(state, step, step.IsLayerStep ? Digest.Of(System.Text.Encoding.UTF8.GetBytes("layer of " + step.Key)) : null);
        }

        return keys;
    }
}
