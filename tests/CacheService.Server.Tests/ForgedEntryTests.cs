using CacheService.Api.V1;
using CacheService.Server.Access;
using CacheService.Testing;
using Microsoft.Data.Sqlite;

namespace CacheService.Server.Tests;

/// <summary>
/// Someone who can write the SQLite file but does not hold the server's entry key: whatever they
/// change or plant there costs a miss, is removed and counted, and never serves their layer.
/// </summary>
public sealed class ForgedEntryTests
{
    private const string Ns = "team/main";

    [Fact]
    public async Task An_entry_changed_or_planted_in_the_sqlite_file_is_a_miss_and_is_removed()
    {
        await using var server = await TestServer.StartAsync();
        var real = await Layers.UploadAndCommitAsync(server.Client, Ns, "real", Layers.Random(1000, seed: 170));
        var attacker = await Layers.UploadAndCommitAsync(server.Client, "attacker/ns", "bait", Layers.Random(1000, seed: 171));

        await using (var db = new SqliteConnection($"Data Source={Path.Combine(server.DataDirectory, "index.db")};Pooling=false"))
        {
            await db.OpenAsync();
            await using var sql = db.CreateCommand();
            // Repoint the real key at the attacker's layer, and plant a copy of the real row under another key.
            sql.CommandText = """
                INSERT INTO entries (ns, key, digest, diff_id, size, media_type, preimage, created, last_access, recency, mac)
                    SELECT ns, $planted, digest, diff_id, size, media_type, preimage, created, last_access, recency, mac FROM entries WHERE ns = $ns AND key = $real;
                UPDATE entries SET digest = $digest, diff_id = $diffId WHERE ns = $ns AND key = $real;
                """;
            sql.Parameters.AddWithValue("$ns", Ns);
            sql.Parameters.AddWithValue("$real", Layers.Key("real"));
            sql.Parameters.AddWithValue("$planted", Layers.Key("planted"));
            sql.Parameters.AddWithValue("$digest", attacker.Digest);
            sql.Parameters.AddWithValue("$diffId", attacker.DiffId);
            await sql.ExecuteNonQueryAsync();
        }

        foreach (var key in new[] { "real", "planted" })
        {
            Assert.False((await server.Client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key(key) })).Hit);
        }

        Assert.Equal(2, await server.MetricAsync($"cacheservice_forged_entries_total{{namespace=\"{Ns}\"}}"));
        await using (var db = new SqliteConnection($"Data Source={Path.Combine(server.DataDirectory, "index.db")};Pooling=false"))
        {
            await db.OpenAsync();
            await using var count = db.CreateCommand();
            count.CommandText = "SELECT COUNT(*) FROM entries WHERE ns = $ns";
            count.Parameters.AddWithValue("$ns", Ns);
            Assert.Equal(0L, (long)(await count.ExecuteScalarAsync())!); // removed, not just hidden
        }

        // The builder rebuilds and commits again; the key serves the real layer from then on.
        await server.Client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key("real"), Layer = real });
        Assert.Equal(real.Digest, (await server.Client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("real") })).Layer.Digest);
    }

    [Fact]
    public async Task The_embedded_key_is_made_once_kept_private_and_survives_a_restart()
    {
        await using var server = await TestServer.StartAsync();
        await Layers.UploadAndCommitAsync(server.Client, Ns, "kept", Layers.Random(100, seed: 172));
        var keyFile = Path.Combine(server.DataDirectory, IntegrityOptions.KeyFileName);
        var key = await File.ReadAllTextAsync(keyFile);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, OperatingSystem.IsWindows() ? UnixFileMode.None : File.GetUnixFileMode(keyFile));

        await server.RestartAsync();
        Assert.Equal(key, await File.ReadAllTextAsync(keyFile));
        Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("kept") })).Hit);
    }
}
