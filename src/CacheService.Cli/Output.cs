using System.Globalization;
using System.Text.Json;

namespace CacheService.Cli;

/// <summary>How every command prints: one JSON object per <c>--json</c> answer, sizes as docker prints them.</summary>
internal static class Output
{
    /// <summary>Writes one JSON object, then a newline.</summary>
    public static async Task WriteJsonAsync(TextWriter output, Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        await output.WriteLineAsync(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
    }

    /// <summary>Bytes the way docker prints them: 1.5MB.</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1000 => $"{bytes}B",
        < 1_000_000 => (bytes / 1e3).ToString("0.#", CultureInfo.InvariantCulture) + "kB",
        < 1_000_000_000 => (bytes / 1e6).ToString("0.#", CultureInfo.InvariantCulture) + "MB",
        _ => (bytes / 1e9).ToString("0.##", CultureInfo.InvariantCulture) + "GB",
    };
}
