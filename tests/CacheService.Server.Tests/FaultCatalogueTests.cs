using CacheService.Testing;

namespace CacheService.Server.Tests;

/// <summary>The fault catalogue on the embedded engines: SQLite and the file system.</summary>
public sealed class FaultCatalogueTests : FaultCatalogue
{
    protected override Task<TestServer> StartServerAsync(params string[] args) => TestServer.StartAsync(args);

    protected override async Task CorruptAsync(string ns, string digest)
    {
        await using var file = new FileStream(Server.BlobPath(ns, digest), FileMode.Open, FileAccess.ReadWrite);
        file.Seek(-1, SeekOrigin.End);
        var last = new byte[1];
        await file.ReadExactlyAsync(last);
        file.Seek(-1, SeekOrigin.End);
        file.WriteByte((byte)(last[0] ^ 0xFF));
    }

    // The store makes the staging directory with its first upload; a push cancelled before the
    // server read its header never made one, and has staged nothing.
    protected override string[] StagedBlobUploads() =>
        Path.Combine(Server.DataDirectory, "blobs", ".uploads") is var staging && Directory.Exists(staging) ? Directory.GetFiles(staging) : [];

    // Handles this process holds on the blob's file (the server runs in this process).
    protected override int ReadsLeftOpen(string ns, string digest)
    {
        var path = Server.BlobPath(ns, digest);
        return new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos().Count(fd => fd.LinkTarget == path);
    }
}
