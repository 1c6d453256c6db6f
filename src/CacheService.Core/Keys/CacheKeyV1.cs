using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace CacheService.Core.Keys;

/// <summary>
/// Version 1 of the cache key derivation: the one pure function every component (server, client
/// SDK, CLI) uses. docs/cache-key.md specifies the bytes; testdata/cache-keys/v1.json pins them.
/// Changing anything here is a new version with a new domain tag, never an edit.
/// </summary>
public static class CacheKeyV1
{
    // Strings that are not valid Unicode (lone surrogates) are refused rather than silently
    // replaced, which could make two different inputs encode alike.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Domain and version tag of step keys.</summary>
    public const string KeyDomain = "cacheservice/key/v1";

    /// <summary>Domain tag of the state after a layer step (RUN, COPY, ADD).</summary>
    public const string LayerStateDomain = "cacheservice/state/v1/layer";

    /// <summary>Domain tag of the state after a config-only step (ENV, WORKDIR, ...).</summary>
    public const string ConfigStateDomain = "cacheservice/state/v1/config";

    /// <summary>Domain tag of the empty base image, <c>FROM scratch</c>.</summary>
    public const string ScratchDomain = "cacheservice/state/v1/scratch";

    /// <summary>The parent state of the first step after <c>FROM scratch</c>.</summary>
    public static Digest ScratchState { get; } = Hash(Encode(w => w.Field(ScratchDomain)));

    /// <summary>Derives the key of one step.</summary>
    /// <exception cref="InvalidFieldException">A malformed platform or instruction, or a repeated arg name.</exception>
    public static StepKey Compute(StepKeyInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var platform = NormalizePlatform(input.Platform);
        var instruction = InstructionNormalizer.Normalize(input.Instruction);
        var args = SortArgs(input.Args);

        var preimage = Encode(w =>
        {
            w.Field(KeyDomain);
            w.Field(input.ParentState.Value);
            w.Field(platform);
            w.Field(instruction);
            w.Count(args.Count);
            foreach (var (name, value) in args)
            {
                w.Field(name);
                w.Field(value);
            }

            w.Field(input.SourcesDigest?.Value ?? string.Empty);
        });

        return new StepKey(Hash(preimage), instruction, InstructionNormalizer.IsLayerStep(instruction), preimage);
    }

    /// <summary>
    /// The state after a step, which is the parent state of the next one. After a layer step it
    /// follows the layer actually produced (OCI ChainID style), so two parents never share a child
    /// key even when their top layers are identical; after a config-only step it follows the key.
    /// </summary>
    public static Digest NextState(Digest parentState, StepKey step, Digest? diffId)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step.IsLayerStep)
        {
            var layer = diffId ?? throw new ArgumentException("a layer step moves the state by its diff id", nameof(diffId));
            return Hash(Encode(w => { w.Field(LayerStateDomain); w.Field(parentState.Value); w.Field(layer.Value); }));
        }

        return Hash(Encode(w => { w.Field(ConfigStateDomain); w.Field(parentState.Value); w.Field(step.Key.Value); }));
    }

    /// <summary>Lower-cases and checks <c>os/arch[/variant]</c>.</summary>
    public static string NormalizePlatform(string? platform)
    {
        if (string.IsNullOrEmpty(platform))
        {
            throw new InvalidFieldException("platform", "is required (os/arch[/variant])");
        }

        var normalized = platform.ToLowerInvariant();
        var parts = normalized.Split('/');
        if (parts.Length is < 2 or > 3 || parts.Any(p => p.Length == 0 || !p.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')))
        {
            throw new InvalidFieldException("platform", "must be os/arch[/variant], e.g. linux/amd64");
        }

        return normalized;
    }

    private static List<KeyValuePair<string, string>> SortArgs(IReadOnlyList<KeyValuePair<string, string>> args)
    {
        var sorted = args.OrderBy(a => StrictUtf8.GetBytes(a.Key), Utf8Order.Instance).ToList();
        for (var i = 1; i < sorted.Count; i++)
        {
            if (sorted[i].Key == sorted[i - 1].Key)
            {
                throw new InvalidFieldException("args", $"name '{sorted[i].Key}' is given twice");
            }
        }

        foreach (var arg in sorted)
        {
            if (arg.Key.Length == 0)
            {
                throw new InvalidFieldException("args", "a name is empty");
            }
        }

        return sorted;
    }

    private static Digest Hash(byte[] preimage) => Digest.FromHash(SHA256.HashData(preimage));

    private static byte[] Encode(Action<PreimageWriter> write)
    {
        var writer = new PreimageWriter();
        write(writer);
        return writer.ToArray();
    }

    // Every field is a 4-byte big-endian length and its UTF-8 bytes, so no choice of separator
    // can make two different inputs collide.
    private sealed class PreimageWriter
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();

        public void Field(string value)
        {
            var bytes = StrictUtf8.GetBytes(value);
            Count(bytes.Length);
            _buffer.Write(bytes);
        }

        public void Count(int count)
        {
            BinaryPrimitives.WriteUInt32BigEndian(_buffer.GetSpan(4), checked((uint)count));
            _buffer.Advance(4);
        }

        public byte[] ToArray() => _buffer.WrittenSpan.ToArray();
    }

    private sealed class Utf8Order : IComparer<byte[]>
    {
        public static readonly Utf8Order Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
