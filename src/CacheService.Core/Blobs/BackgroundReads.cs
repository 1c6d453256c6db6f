namespace CacheService.Core.Blobs;

/// <summary>
/// Marks the reads of housekeeping (the scrubber) for the stores below: a store that keeps local
/// copies of what is read neither serves these from a copy nor makes one, so the scrubber checks
/// the store of record and walking it does not push the hot copies out.
/// </summary>
/// <remarks>The mark flows with the async calls made after it, and ends with the method that set it.</remarks>
public static class BackgroundReads
{
    private static readonly AsyncLocal<bool> Marked = new();

    /// <summary>True inside housekeeping that called <see cref="Mark"/>.</summary>
    public static bool InProgress => Marked.Value;

    /// <summary>Marks the reads of the calling async method, and of what it calls, as housekeeping.</summary>
    public static void Mark() => Marked.Value = true;
}
