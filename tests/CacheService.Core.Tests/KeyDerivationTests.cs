using CacheService.Core.Keys;
using CacheService.Core.Options;

namespace CacheService.Core.Tests;

/// <summary>The preimage a commit keeps: checked against its key, and bounded (issue 13, finding 17).</summary>
public class KeyDerivationTests
{
    private static readonly Digest Parent = Digest.Of([1, 2, 3]);

    private static (Digest Key, KeyInputs Inputs) Step(string instruction, int args)
    {
        var spec = new StepSpec(instruction, [.. Enumerable.Range(0, args).Select(i => KeyValuePair.Create($"ARG{i}", new string('v', 60)))], null);
        var keys = new KeyDerivation(new LimitsOptions());
        return (keys.Derive(Parent, "linux/amd64", spec, "step").Key, new KeyInputs(Parent, "linux/amd64", spec));
    }

    [Fact]
    public void A_small_preimage_is_kept_and_names_its_inputs()
    {
        var (key, inputs) = Step("RUN make", 2);
        var preimage = new KeyDerivation(new LimitsOptions()).Preimage(key, inputs);
        Assert.Contains("RUN make", preimage, StringComparison.Ordinal);
        Assert.Contains("ARG1", preimage, StringComparison.Ordinal);
    }

    [Fact]
    public void Inputs_at_the_request_limits_are_checked_but_their_megabytes_of_preimage_are_not_kept()
    {
        var (key, inputs) = Step("RUN " + new string('x', 60_000), 1000);
        var keys = new KeyDerivation(new LimitsOptions());
        Assert.Equal(string.Empty, keys.Preimage(key, inputs));
        Assert.Throws<InvalidFieldException>(() => keys.Preimage(Digest.Of([9]), inputs)); // still checked against the key
    }
}
