using CacheService.Core;
using CacheService.Core.Keys;
using Wire = CacheService.Api.V1;

namespace CacheService.Server.Rpc;

/// <summary>Turns wire messages into checked core values; every failure names the request field.</summary>
internal static class Requests
{
    public static string Namespace(string value, string field = "namespace") => NamespaceName.Validate(value, field);

    public static IReadOnlyList<string> Namespaces(string primary, IReadOnlyList<string> fallbacks, int max)
    {
        if (fallbacks.Count > max)
        {
            throw new InvalidFieldException("fallback_namespaces", $"has more than {max} entries");
        }

        var all = new List<string>(fallbacks.Count + 1) { Namespace(primary) };
        for (var i = 0; i < fallbacks.Count; i++)
        {
            all.Add(Namespace(fallbacks[i], $"fallback_namespaces[{i}]"));
        }

        return all;
    }

    public static Digest Digest(string value, string field) => Core.Digest.Parse(value, field);

    public static IReadOnlyList<Digest> Digests(IReadOnlyList<string> values, string field, int max)
    {
        if (values.Count > max)
        {
            throw new InvalidFieldException(field, $"has more than {max} entries");
        }

        return values.Select((v, i) => Digest(v, $"{field}[{i}]")).ToList();
    }

    private const int MaxMediaTypeLength = 255;

    public static LayerDescriptor Layer(Wire.LayerDescriptor? layer, string field = "layer")
    {
        if (layer is null)
        {
            throw new InvalidFieldException(field, "is required");
        }

        if (layer.Size < 0)
        {
            throw new InvalidFieldException($"{field}.size", "must not be negative");
        }

        if (string.IsNullOrWhiteSpace(layer.MediaType))
        {
            throw new InvalidFieldException($"{field}.media_type", "is required");
        }

        // Stored with every entry and outside any budget: a media type is a short name (RFC 6838
        // allows 127 characters on each side of the '/'), not a place for megabytes.
        if (layer.MediaType.Length > MaxMediaTypeLength)
        {
            throw new InvalidFieldException($"{field}.media_type", $"is longer than {MaxMediaTypeLength} characters");
        }

        return new LayerDescriptor(Digest(layer.Digest, $"{field}.digest"), Digest(layer.DiffId, $"{field}.diff_id"), layer.Size, layer.MediaType);
    }

    public static StepSpec Step(Wire.StepInput? step, string field)
    {
        if (step is null)
        {
            throw new InvalidFieldException(field, "is required");
        }

        var sources = string.IsNullOrEmpty(step.SourcesDigest) ? (Digest?)null : Digest(step.SourcesDigest, $"{field}.sources_digest");
        var args = step.Args.Select(a => KeyValuePair.Create(a.Name, a.Value)).ToList();
        return new StepSpec(step.Instruction, args, sources);
    }

    public static Wire.LayerDescriptor ToWire(LayerDescriptor layer) => new()
    {
        Digest = layer.Digest.Value,
        DiffId = layer.DiffId.Value,
        Size = layer.Size,
        MediaType = layer.MediaType,
    };
}
