using System.Runtime.InteropServices;

namespace CacheService.Blobs.FileSystem;

/// <summary>
/// Makes a directory's entries durable: a rename is on disk only once the directory holding it is
/// flushed (fsync on the directory), which .NET cannot do, as it refuses to open a directory.
/// </summary>
public static partial class DirectorySync
{
    private const int ReadOnly = 0; // O_RDONLY
    private const int DirectoryOnly = 0x10000; // O_DIRECTORY on Linux (x64 and arm64)
    private const int CloseOnExec = 0x80000; // O_CLOEXEC

    /// <summary>Flushes <paramref name="directory"/>'s entries to disk. Does nothing where that is not Linux.</summary>
    /// <exception cref="IOException">The directory cannot be opened or flushed.</exception>
    public static void Flush(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(directory, ReadOnly | DirectoryOnly | CloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"cannot open directory {directory} to flush it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"cannot flush directory {directory} (errno {Marshal.GetLastPInvokeError()})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
