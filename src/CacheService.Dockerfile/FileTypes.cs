using System.Runtime.InteropServices;

namespace CacheService.Dockerfile;

/// <summary>
/// What a directory entry is, as <c>lstat</c> sees it. .NET's FileSystemInfo cannot tell a FIFO,
/// a socket or a device from a regular file, and opening a FIFO to hash it blocks forever.
/// </summary>
internal static class FileTypes
{
    private const int AtFileDescriptorCwd = -100;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1;

    // struct statx keeps one layout on every architecture: stx_mode is the 16 bits at byte 28.
    private const int ModeOffset = 28;

    /// <summary>Null for a regular file, a directory or a symlink; else what the entry is ("a FIFO", "a socket", "a device").</summary>
    public static string? Special(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var buffer = new byte[256];
        if (Statx(AtFileDescriptorCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
        {
            return null; // gone or unreadable: the read that follows says so
        }

        return (BitConverter.ToUInt16(buffer, ModeOffset) & 0xF000) switch
        {
            0x8000 or 0x4000 or 0xA000 => null,
            0x1000 => "a FIFO",
            0xC000 => "a socket",
            _ => "a device",
        };
    }

    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    private static extern int Statx(int directory, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, byte[] buffer);
}
