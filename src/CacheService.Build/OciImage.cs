using System.Text.Json.Nodes;
using CacheService.Core;

namespace CacheService.Build;

/// <summary>One layer of an image: the compressed blob and the digest of its uncompressed tar.</summary>
public sealed record ImageLayer(Digest Digest, Digest DiffId, long Size, string MediaType);

/// <summary>
/// An image being built: its layers, bottom first, and its OCI image config. The config's
/// <c>rootfs.diff_ids</c> always list the layers' diff ids; <see cref="WithLayer"/> keeps them so.
/// </summary>
public sealed record OciImage(IReadOnlyList<ImageLayer> Layers, JsonObject Config)
{
    /// <summary>The empty image of <c>FROM scratch</c> for a platform (<c>os/arch[/variant]</c>).</summary>
    public static OciImage Scratch(string platform)
    {
        var parts = platform.Split('/');
        var config = new JsonObject
        {
            ["architecture"] = parts[1],
            ["os"] = parts[0],
            ["config"] = new JsonObject(),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray() },
        };
        if (parts.Length > 2)
        {
            config["variant"] = parts[2];
        }

        return new OciImage([], config);
    }

    /// <summary>This image with <paramref name="layer"/> on top, made by the instruction <paramref name="createdBy"/>.</summary>
    public OciImage WithLayer(ImageLayer layer, string createdBy)
    {
        ArgumentNullException.ThrowIfNull(layer);
        var config = (JsonObject)Config.DeepClone();
        ((JsonArray)config["rootfs"]!["diff_ids"]!).Add(layer.DiffId.Value);
        if (config["history"] is not JsonArray history)
        {
            config["history"] = history = [];
        }

        history.Add(new JsonObject { ["created_by"] = createdBy });
        return new OciImage([.. Layers, layer], config);
    }

    /// <summary>This image's settings with no layers: enough for buildah to apply config-only instructions to, at no cost in files.</summary>
    public OciImage WithoutLayers()
    {
        var config = (JsonObject)Config.DeepClone();
        config["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray() };
        config.Remove("history");
        return new OciImage([], config);
    }

    /// <summary>This image's layers with the runtime settings (<c>config.config</c>) of <paramref name="settings"/>.</summary>
    public OciImage WithSettingsOf(JsonObject settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var config = (JsonObject)Config.DeepClone();
        config["config"] = settings["config"]?.DeepClone() ?? new JsonObject();
        return new OciImage(Layers, config);
    }
}
