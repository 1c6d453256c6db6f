namespace CacheService.Server.Hosting;

/// <summary>
/// Holds the data directory for this process (an exclusive lock on <c>&lt;data&gt;/lock</c>), taken
/// before anything in the directory is touched: a second server started on the same directory
/// would wipe this one's staged uploads and spool and write the same SQLite file, so it refuses to
/// start instead. The lock goes with the process, even after a crash.
/// </summary>
internal sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _lock;

    public DataDirectoryLock(string dataDirectory)
    {
        var directory = Path.GetFullPath(dataDirectory);
        Directory.CreateDirectory(directory);
        try
        {
            _lock = new FileStream(Path.Combine(directory, "lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new StartupException($"the data directory {directory} is in use by another CacheService process; give each server a directory of its own", e);
        }
    }

    public void Dispose() => _lock.Dispose();
}
