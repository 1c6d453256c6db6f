namespace CacheService.Server.Registry;

/// <summary>A <c>Range: bytes=...</c> header resolved against a blob's size.</summary>
internal readonly record struct ByteRange(long Start, long End)
{
    public long Length => End - Start + 1;

    public bool IsWhole(long size) => Start == 0 && End == size - 1;

    /// <summary>
    /// The range a request asks for: the whole blob without a <c>bytes=</c> header, the last N
    /// bytes for <c>bytes=-N</c>, and <c>bytes=S-</c> or <c>bytes=S-E</c> clipped to the blob.
    /// A range that starts past the end is refused with 416.
    /// </summary>
    public static ByteRange Of(string header, long size)
    {
        if (header is null || !header.StartsWith("bytes=", StringComparison.Ordinal))
        {
            return new ByteRange(0, size - 1);
        }

        var parts = header["bytes=".Length..].Split('-');
        long start, end;
        if (parts[0].Length == 0 && parts.Length > 1 && long.TryParse(parts[1], out var suffix))
        {
            (start, end) = (Math.Max(0, size - suffix), size - 1); // "bytes=-N": the last N bytes
        }
        else
        {
            start = long.TryParse(parts[0], out var s) ? s : 0;
            end = parts.Length > 1 && long.TryParse(parts[1], out var e) ? Math.Min(e, size - 1) : size - 1;
        }

        return start <= end && start < size ? new ByteRange(start, end) : throw new RegistryError(416, "RANGE_INVALID", $"range {header} is outside 0-{size - 1}");
    }
}
