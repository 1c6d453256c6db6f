using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;

namespace CacheService.Storage.Tests.Engines;

/// <summary>The index contract on the embedded SQLite engine, plus what only a file-backed engine can show.</summary>
public sealed class SqliteLayerIndexTests : LayerIndexContract
{
    private string? _directory;

    protected override ILayerIndex CreateIndex(TimeProvider time)
    {
        _directory ??= Directory.CreateTempSubdirectory("cs-sqlite-").FullName;
        return new SqliteLayerIndex(Path.Combine(_directory, "index.db"), time);
    }

    public override void Dispose()
    {
        base.Dispose();
        Directory.Delete(_directory!, recursive: true);
    }

    [Fact]
    public async Task Entries_and_counters_survive_reopening_the_file()
    {
        var layer = Layer("durable", 42);
        await Commit("durable", layer);
        await Index.RecordUsageAsync(Ns, new UsageDelta(Lookups: 2, Hits: 1), Ct);
        ((IDisposable)Index).Dispose();

        using var reopened = new SqliteLayerIndex(Path.Combine(_directory!, "index.db"), Time);
        Assert.Equal(layer, (await reopened.LookupAsync(Ns, KeyOf("durable"), Ct))!.Layer);
        var usage = await reopened.GetUsageAsync(Ns, Ct);
        Assert.Equal((2L, 1L, 1L, 42L), (usage.Lookups, usage.Hits, usage.Entries, usage.StoredBytes));
    }
}
