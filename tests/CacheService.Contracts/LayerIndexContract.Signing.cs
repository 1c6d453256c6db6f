using CacheService.Core;
using CacheService.Core.Index;
using CacheService.Core.Observation;

namespace CacheService.Contracts;

/// <summary>
/// Entry MACs on every engine: the engine keeps the MAC it was given and hands it back on every
/// read, and <see cref="SignedLayerIndex"/> over the engine turns an entry committed without the
/// key (straight into the engine, as someone with write access to Redis or the SQLite file could)
/// into a miss and removes it.
/// </summary>
public abstract partial class LayerIndexContract
{
    private static readonly NamespaceBudget NoLimit = new(long.MaxValue, long.MaxValue);

    private static EntryKeys TestKeys(byte seed) => new([.. Enumerable.Repeat(seed, 32)]);

    [Fact]
    public async Task An_entrys_mac_comes_back_as_committed_on_every_read()
    {
        var mac = new string('a', 64);
        var layer = Layer("mac", 10);
        var config = new BlobRef(Digest.Of("config"u8), 5);
        var committed = await Index.CommitAsync(Ns, new NewEntry(KeyOf("m"), layer, [new BlobRef(layer.Digest, 10), config], "", mac), NoLimit, Ct);
        Assert.Equal(mac, committed.Entry.Mac);
        Assert.Equal(mac, (await Index.LookupAsync(Ns, KeyOf("m"), Ct))!.Mac);
        Assert.Equal(mac, (await Index.LookupAndCountAsync(Ns, KeyOf("m"), Ct))!.Mac);
        Assert.Equal(mac, Assert.Single(await Index.WalkAsync([Ns], KeyOf("m"), (_, _) => null, Ct)).Entry.Mac);
        Assert.Equal(mac, Assert.Single(await Index.ListEntriesAsync(Ns, Ct)).Mac);

        var tagged = await Index.PutTagAsync(Ns, "v1", NewEntry.ForLayer(KeyOf("t"), layer) with { Mac = new string('b', 64) }, NoLimit, Ct);
        Assert.Equal(new string('b', 64), tagged.Entry.Mac);
        Assert.Equal("", (await Commit("unsigned", layer)).Entry.Mac);
    }

    [Fact]
    public async Task A_signed_index_serves_its_own_entries_and_treats_unsigned_or_wrongly_signed_ones_as_misses_and_removes_them()
    {
        var signed = new SignedLayerIndex(Index, TestKeys(1), NullCacheObserver.Instance);
        var layer = Layer("own", 10);
        Assert.True((await signed.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("own"), layer), NoLimit, Ct)).Created);
        Assert.Equal(layer, (await signed.LookupAndCountAsync(Ns, KeyOf("own"), Ct))!.Layer);

        // Planted past the server: no MAC, and a MAC made with another key.
        var planted = Layer("planted", 10);
        await Index.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("bare"), planted), NoLimit, Ct);
        await new SignedLayerIndex(Index, TestKeys(2), NullCacheObserver.Instance).CommitAsync(Ns, NewEntry.ForLayer(KeyOf("other-key"), planted), NoLimit, Ct);
        // A real entry whose layer was swapped for another afterwards: its MAC no longer matches.
        var real = await signed.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("swapped"), layer), NoLimit, Ct);
        await Index.DeleteAsync(Ns, [KeyOf("swapped")], Ct);
        await Index.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("swapped"), planted) with { Mac = real.Entry.Mac }, NoLimit, Ct);

        foreach (var key in new[] { "bare", "other-key", "swapped" })
        {
            Assert.Null(await signed.LookupAsync(Ns, KeyOf(key), Ct));
            Assert.Null(await Index.LookupAsync(Ns, KeyOf(key), Ct)); // removed, not just hidden
        }

        Assert.Equal([KeyOf("own")], (await signed.ListEntriesAsync(Ns, Ct)).Select(e => e.Key));
    }

    [Fact]
    public async Task A_forged_entry_ends_a_walk_where_it_stands_and_a_commit_replaces_it()
    {
        var signed = new SignedLayerIndex(Index, TestKeys(1), NullCacheObserver.Instance);
        await signed.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("s1"), Layer("s1", 1)), NoLimit, Ct);
        await Index.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("s2"), Layer("forged", 1)), NoLimit, Ct);
        await signed.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("s3"), Layer("s3", 1)), NoLimit, Ct);
        var next = new Dictionary<Digest, Digest?> { [KeyOf("s1")] = KeyOf("s2"), [KeyOf("s2")] = KeyOf("s3"), [KeyOf("s3")] = null };

        var hits = await signed.WalkAsync([Ns], KeyOf("s1"), (entry, _) => next[entry.Key], Ct);
        Assert.Equal([KeyOf("s1")], hits.Select(h => h.Entry.Key));

        // First writer wins, but a forger is no writer: the real commit takes the key.
        await Index.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("s2"), Layer("forged", 1)), NoLimit, Ct);
        var outcome = await signed.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("s2"), Layer("s2", 1)), NoLimit, Ct);
        Assert.True(outcome.Created);
        Assert.Equal(Layer("s2", 1), (await signed.LookupAsync(Ns, KeyOf("s2"), Ct))!.Layer);
        Assert.Equal(3, (await signed.WalkAsync([Ns], KeyOf("s1"), (entry, _) => next[entry.Key], Ct)).Count);
    }

    [Fact]
    public async Task Entries_signed_with_a_previous_key_still_hit_after_rotation()
    {
        var old = TestKeys(1);
        await new SignedLayerIndex(Index, old, NullCacheObserver.Instance).CommitAsync(Ns, NewEntry.ForLayer(KeyOf("old"), Layer("old", 1)), NoLimit, Ct);
        var rotated = new SignedLayerIndex(Index, new EntryKeys(TestKeys(3).Current, [old.Current]), NullCacheObserver.Instance);
        Assert.NotNull(await rotated.LookupAsync(Ns, KeyOf("old"), Ct));

        var dropped = new SignedLayerIndex(Index, TestKeys(3), NullCacheObserver.Instance);
        Assert.Null(await dropped.LookupAsync(Ns, KeyOf("old"), Ct));
    }
}
