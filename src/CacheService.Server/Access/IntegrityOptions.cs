using CacheService.Core.Index;

namespace CacheService.Server.Access;

/// <summary>
/// The keys that sign index entries (configuration section <c>CacheService:Integrity</c>); see
/// <see cref="SignedLayerIndex"/>. Every replica that shares an index must share the keys. The
/// registry's bearer tokens are signed with a key derived from the current one, so a token one
/// replica issued is good at any other.
/// </summary>
public sealed class IntegrityOptions
{
    /// <summary>Configuration section.</summary>
    public const string Section = "CacheService:Integrity";

    /// <summary>Name of the key file the embedded engine keeps in the data directory when no key is configured.</summary>
    public const string KeyFileName = "entry.key";

    /// <summary>
    /// The key new entries are signed with: at least 32 random bytes as base64
    /// (<c>openssl rand -base64 32</c>). Required with the Redis index. Unset with the SQLite index:
    /// the server makes one and keeps it in the data directory (<see cref="KeyFileName"/>). Default unset.
    /// </summary>
    public string? EntryKey { get; set; }

    /// <summary>Keys whose signatures are still accepted after a rotation, as base64. Default none.</summary>
    public string[]? PreviousEntryKeys { get; set; }

    /// <summary>
    /// The share (0 to 1) of whole-blob registry GETs hashed against their digest on the way out;
    /// the others are sent as stored. Registry clients check every blob's digest themselves, so an
    /// unverified read can fail a pull but never install a wrong byte; a verified one that does not
    /// match is cut short and purged at once. gRPC downloads are always verified (the SDK relies on
    /// it). Default 0.1.
    /// </summary>
    public double VerifiedRegistryReads { get; set; } = 0.1;

    /// <summary>How often the scrubber runs a round. Default 10 seconds.</summary>
    public TimeSpan ScrubInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Bytes the scrubber hashes per round (about: it finishes the blob it is on); 0 turns it off.
    /// Default 256 MiB, about 25 MB/s at the default interval: a pass over 100 GB every 70 minutes.
    /// </summary>
    public long ScrubBytesPerRound { get; set; } = 256L << 20;

    /// <summary>Problems with the values, empty when valid; <paramref name="sharedIndex"/> is true for an index that replicas share (Redis).</summary>
    public IEnumerable<string> Validate(bool sharedIndex)
    {
        if (string.IsNullOrWhiteSpace(EntryKey))
        {
            if (sharedIndex)
            {
                yield return "EntryKey is required with the redis index: every replica signs and checks entries with it, so they must share it. "
                    + "Make one with 'openssl rand -base64 32' and give it to every replica (the Helm chart keeps it in a Secret)";
            }
        }
        else if (Problem(EntryKey) is { } problem)
        {
            yield return $"EntryKey: {problem}";
        }

        if (!(VerifiedRegistryReads is >= 0 and <= 1))
        {
            yield return $"VerifiedRegistryReads must be between 0 and 1 (a share of reads), not {VerifiedRegistryReads}";
        }

        if (ScrubInterval <= TimeSpan.Zero || ScrubInterval > TimeSpan.FromDays(1))
        {
            yield return $"ScrubInterval must be more than zero and at most a day, not {ScrubInterval}";
        }

        if (ScrubBytesPerRound < 0)
        {
            yield return $"ScrubBytesPerRound must not be negative (0 turns the scrubber off), not {ScrubBytesPerRound}";
        }

        foreach (var previous in PreviousEntryKeys ?? [])
        {
            if (Problem(previous) is { } problem)
            {
                yield return $"PreviousEntryKeys: {problem}";
            }
        }
    }

    /// <summary>The configured keys; without <see cref="EntryKey"/>, the key kept in <paramref name="dataDirectory"/> (made on first use).</summary>
    public EntryKeys Keys(string dataDirectory) =>
        new(string.IsNullOrWhiteSpace(EntryKey) ? KeptKey(dataDirectory) : EntryKeys.Parse(EntryKey), [.. (PreviousEntryKeys ?? []).Select(EntryKeys.Parse)]);

    private static string? Problem(string key)
    {
        try
        {
            EntryKeys.Parse(key);
            return null;
        }
        catch (FormatException e)
        {
            return e.Message;
        }
    }

    // Readable by the server's user only; written whole before it is used, so a crash cannot leave half a key.
    private static byte[] KeptKey(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, KeyFileName);
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(dataDirectory);
            var partial = path + ".partial";
            File.WriteAllText(partial, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)) + "\n");
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }

            File.Move(partial, path, overwrite: false);
        }

        return EntryKeys.Parse(File.ReadAllText(path));
    }
}
