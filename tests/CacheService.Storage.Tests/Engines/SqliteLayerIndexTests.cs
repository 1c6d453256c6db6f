using CacheService.Contracts;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using Microsoft.Data.Sqlite;

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

    [Fact]
    public async Task A_file_of_the_first_schema_is_migrated_in_place_and_keeps_its_entries_and_tags()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cs-sqlite-v1-").FullName, "index.db");
        var layer = Layer("from v1", 7);
        const string OldTagPreimage = "{\"ociTag\":\"v1\"}";
        using (var v1 = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            v1.Open();
            using var create = v1.CreateCommand();
            // The entries table as the first schema wrote it: no tag column, user_version 0.
            create.CommandText = $"""
                CREATE TABLE entries (ns TEXT NOT NULL, key TEXT NOT NULL, digest TEXT NOT NULL, diff_id TEXT NOT NULL, size INTEGER NOT NULL,
                    media_type TEXT NOT NULL, preimage TEXT NOT NULL, created INTEGER NOT NULL, last_access INTEGER NOT NULL,
                    recency INTEGER NOT NULL, hits INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (ns, key)) WITHOUT ROWID;
                INSERT INTO entries VALUES ('{Ns}', '{KeyOf("old").Value}', '{layer.Digest.Value}', '{layer.DiffId.Value}', 7, '{layer.MediaType}', '', 0, 0, 1, 0);
                INSERT INTO entries VALUES ('{Ns}', '{KeyOf("old tag").Value}', '{layer.Digest.Value}', '{layer.DiffId.Value}', 7, '{layer.MediaType}', '{OldTagPreimage}', 0, 0, 2, 0);
                """;
            create.ExecuteNonQuery();
        }

        using (var migrated = new SqliteLayerIndex(path, Time))
        {
            Assert.Equal(layer, (await migrated.LookupAsync(Ns, KeyOf("old"), Ct))!.Layer);
            await migrated.PutTagAsync(Ns, "latest", NewEntry.ForLayer(KeyOf("tagged"), layer), new NamespaceBudget(1000, 1000), Ct);
            Assert.Equal(["latest", "v1"], (await migrated.ListTagsAsync(Ns, null, 10, Ct)).Select(t => t.Tag)); // v1 was a tag of the first schema
        }

        Assert.Equal(3L, UserVersion(path));
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    [Fact]
    public void A_file_written_by_a_newer_schema_is_refused_not_misread()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("cs-sqlite-v99-").FullName, "index.db");
        using (var newer = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            newer.Open();
            using var version = newer.CreateCommand();
            version.CommandText = "PRAGMA user_version = 99";
            version.ExecuteNonQuery();
        }

        var e = Assert.Throws<InvalidOperationException>(() => new SqliteLayerIndex(path, Time));
        Assert.Contains("schema version 99", e.Message, StringComparison.Ordinal);
        Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
    }

    // Issue 13, finding 6: scans run on a read-only connection of their own, so a client looping
    // on listings or checks of a big namespace does not turn every lookup elsewhere into a
    // degraded miss; and a scan whose caller gave up stops instead of running to its end.
    [Fact]
    public async Task Scans_of_a_big_namespace_neither_hold_up_lookups_elsewhere_nor_outlive_their_caller()
    {
        await FillAsync("big", 20_000);
        await Commit("hot", Layer("hot", 1), ns: "team/main");

        var sw = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(20_000, (await Index.ListEntriesAsync("big", Ct)).Count);
        var oneScan = sw.Elapsed;

        using var stop = new CancellationTokenSource();
        var scans = 0;
        var scanners = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Index.ListEntriesAsync("big", Ct);
                await Index.VerifyAsync("big", Ct);
                Interlocked.Increment(ref scans);
            }
        })).ToList();

        // A lookup may take a tenth of one scan: queued behind four scans (the old single gate), it took four.
        var limit = oneScan / 10;
        var late = 0;
        for (var i = 0; i < 50; i++)
        {
            sw.Restart();
            Assert.NotNull(await Index.LookupAsync("team/main", KeyOf("hot"), Ct));
            late += sw.Elapsed > limit ? 1 : 0;
        }

        await stop.CancelAsync();
        await Task.WhenAll(scanners);
        Assert.True(late <= 5, $"{late} of 50 lookups took longer than {limit.TotalMilliseconds:F0} ms (one scan: {oneScan.TotalMilliseconds:F0} ms; {scans} scans ran)");

        using var giveUp = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        sw.Restart();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Index.ListEntriesAsync("big", giveUp.Token));
        Assert.True(sw.Elapsed < oneScan, $"the cancelled scan ran {sw.Elapsed.TotalMilliseconds:F0} ms, a whole one {oneScan.TotalMilliseconds:F0} ms");
    }

    // Entries written straight into the file in one transaction: 20,000 commits one by one take too long for a unit test.
    private async Task FillAsync(string ns, int count)
    {
        await Commit("seed", Layer("seed", 1), ns: ns); // the namespace row, the blob and its counters
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_directory!, "index.db")};Pooling=False");
        connection.Open();
        using var tx = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.CommandText = """
            INSERT INTO entries (ns, key, digest, diff_id, size, media_type, preimage, created, last_access, recency, hits)
            SELECT ns, $key, digest, diff_id, size, media_type, preimage, created, last_access, recency, hits FROM entries WHERE ns = $ns AND key = $seed;
            INSERT INTO entry_blobs (ns, key, digest, size) SELECT ns, $key, digest, size FROM entry_blobs WHERE ns = $ns AND key = $seed;
            """;
        var key = insert.Parameters.Add("$key", SqliteType.Text);
        insert.Parameters.AddWithValue("$ns", ns);
        insert.Parameters.AddWithValue("$seed", KeyOf("seed").Value);
        for (var i = 1; i < count; i++)
        {
            key.Value = KeyOf($"filled {i}").Value;
            insert.ExecuteNonQuery();
        }

        tx.Commit();
    }

    private static long UserVersion(string path)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version";
        return (long)command.ExecuteScalar()!;
    }
}
