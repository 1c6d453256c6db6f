using CacheService.Core;
using CacheService.Core.Index;
using Microsoft.Extensions.Time.Testing;

namespace CacheService.Contracts;

/// <summary>
/// The <see cref="ILayerIndex"/> contract, written once. Every engine derives a class from it that
/// only says how to create the engine; the tests are the same for all, so engines cannot drift.
/// Each test uses namespaces of its own, so engines backed by a shared server need no cleanup.
/// </summary>
public abstract partial class LayerIndexContract : IDisposable
{
    private const long MB = 1_000_000;
    private static readonly NamespaceBudget Unlimited = new(long.MaxValue, long.MaxValue);

    protected LayerIndexContract()
    {
        Time = new FakeTimeProvider(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        Index = CreateIndex(Time);
        Ns = UniqueNamespace();
    }

    protected FakeTimeProvider Time { get; }

    protected ILayerIndex Index { get; }

    protected string Ns { get; }

    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>Creates the engine under test with the given clock.</summary>
    protected abstract ILayerIndex CreateIndex(TimeProvider time);

    public virtual void Dispose()
    {
        (Index as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
    }

    protected static string UniqueNamespace() => "t" + Guid.NewGuid().ToString("N")[..12] + "/ns";

    protected static LayerDescriptor Layer(string content, long size) =>
        new(Digest.Of(System.Text.Encoding.UTF8.GetBytes("blob " + content)), Digest.Of(System.Text.Encoding.UTF8.GetBytes("diff " + content)), size, "application/vnd.oci.image.layer.v1.tar+gzip");

    protected static Digest KeyOf(string name) => Digest.Of(System.Text.Encoding.UTF8.GetBytes("key " + name));

    // The collection queue is global; on a shared server other tests' blobs are in it too.
    protected async Task<List<CollectableBlob>> TakeOwnCollectable(DateTimeOffset unreferencedSince) =>
        (await Index.TakeCollectableBlobsAsync(unreferencedSince, 10_000, Ct)).Where(b => b.Namespace == Ns).ToList();

    protected Task<CommitOutcome> Commit(string key, LayerDescriptor layer, NamespaceBudget? budget = null, string? ns = null) =>
        Index.CommitAsync(ns ?? Ns, NewEntry.ForLayer(KeyOf(key), layer), budget ?? Unlimited, Ct);

    [Fact]
    public async Task A_key_never_committed_misses() =>
        Assert.Null(await Index.LookupAsync(Ns, KeyOf("absent"), Ct));

    [Fact]
    public async Task A_committed_key_hits_with_its_layer_and_counts_the_hit()
    {
        var layer = Layer("a", 100);
        var outcome = await Commit("a", layer);
        Assert.True(outcome.Created);
        Assert.Empty(outcome.Evicted);

        Time.Advance(TimeSpan.FromMinutes(5));
        var entry = await Index.LookupAsync(Ns, KeyOf("a"), Ct);
        Assert.NotNull(entry);
        Assert.Equal(layer, entry.Layer);
        Assert.Equal([new BlobRef(layer.Digest, 100)], entry.Blobs);
        Assert.Equal(1, entry.Hits);
        Assert.Equal(Time.GetUtcNow(), entry.LastAccess);
    }

    [Fact]
    public async Task The_first_writer_wins_and_a_second_commit_changes_nothing()
    {
        var first = Layer("first", 10);
        await Commit("k", first);
        var second = await Commit("k", Layer("second", 20));
        Assert.False(second.Created);
        Assert.Equal(first, second.Entry.Layer);
        Assert.Equal(first, (await Index.LookupAsync(Ns, KeyOf("k"), Ct))!.Layer);

        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal(1, usage.Entries);
        Assert.Equal(10, usage.StoredBytes);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task A_counted_lookup_adds_a_lookup_and_a_hit_when_found_in_the_same_step()
    {
        await Commit("k", Layer("a", 10));
        Assert.NotNull(await Index.LookupAndCountAsync(Ns, KeyOf("k"), Ct));
        Assert.Null(await Index.LookupAndCountAsync(Ns, KeyOf("absent"), Ct));
        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("k"), Ct)); // not counted
        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal((2L, 1L), (usage.Lookups, usage.Hits));
        Assert.Contains(Ns, await Index.ListNamespacesAsync(Ct));
    }

    [Fact]
    public async Task A_walk_follows_each_hit_to_the_next_key_reads_fallbacks_and_stops_at_the_first_miss()
    {
        var fallback = Ns + "-main";
        await Commit("s1", Layer("a", 10));
        await Commit("s2", Layer("b", 10), ns: fallback);
        await Commit("s3", Layer("c", 10));
        var order = new Dictionary<Digest, Digest> { [KeyOf("s1")] = KeyOf("s2"), [KeyOf("s2")] = KeyOf("s3"), [KeyOf("s3")] = KeyOf("s4") };

        var hits = await Index.WalkAsync([Ns, fallback], KeyOf("s1"), (entry, _) => order[entry.Key], Ct);
        Assert.Equal([KeyOf("s1"), KeyOf("s2"), KeyOf("s3")], hits.Select(h => h.Entry.Key));
        Assert.Equal([Ns, fallback, Ns], hits.Select(h => h.Namespace));
        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal((4L, 3L), (usage.Lookups, usage.Hits)); // s4 missed; the fallback hit counts for the namespace asked

        var stopped = await Index.WalkAsync([Ns], KeyOf("s1"), (_, _) => null, Ct);
        Assert.Single(stopped);
    }

    [Fact]
    public async Task Listing_entries_returns_each_with_its_blobs_and_preimage()
    {
        await Commit("a", Layer("a", 10));
        await Index.CommitAsync(Ns, NewEntry.ForLayer(KeyOf("b"), Layer("b", 20), "{\"ociTag\":\"v1\"}"), Unlimited, Ct);
        var entries = (await Index.ListEntriesAsync(Ns, Ct)).OrderBy(e => e.Layer.Size).ToList();
        Assert.Equal([KeyOf("a"), KeyOf("b")], entries.Select(e => e.Key));
        Assert.Equal("{\"ociTag\":\"v1\"}", entries[1].Preimage);
        Assert.Equal(20, Assert.Single(entries[1].Blobs).Size);
    }

    [Fact]
    public async Task Namespaces_that_committed_or_recorded_usage_are_listed_in_order()
    {
        var reader = Ns + "-reader";
        await Commit("k", Layer("a", 10));
        await Index.RecordUsageAsync(reader, new UsageDelta(Lookups: 1), Ct);
        var listed = await Index.ListNamespacesAsync(Ct);
        Assert.Contains(Ns, listed);
        Assert.Contains(reader, listed);
        Assert.Equal(listed.Order(StringComparer.Ordinal), listed);
    }

    [Fact]
    public async Task Concurrent_commits_of_one_key_make_exactly_one_entry()
    {
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 32).Select(i => Task.Run(() => Commit("same", Layer($"layer {i}", 10 + i)))));
        Assert.Single(outcomes, o => o.Created);
        var winner = outcomes.Single(o => o.Created).Entry.Layer;
        Assert.All(outcomes, o => Assert.Equal(winner, o.Entry.Layer));
        Assert.Equal(1, (await Index.GetUsageAsync(Ns, Ct)).Entries);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task Eviction_removes_the_least_recently_used_entry_not_the_oldest()
    {
        var budget = new NamespaceBudget(10 * MB, 9 * MB);
        await Commit("one", Layer("one", 3 * MB), budget);
        await Commit("two", Layer("two", 3 * MB), budget);
        await Commit("three", Layer("three", 3 * MB), budget);
        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("one"), Ct)); // "one" is now the most recently used

        var fourth = await Commit("four", Layer("four", 3 * MB), budget);

        Assert.Equal([KeyOf("two")], fourth.Evicted);
        Assert.Null(await Index.LookupAsync(Ns, KeyOf("two"), Ct));
        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("one"), Ct));
        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal(9 * MB, usage.StoredBytes);
        Assert.Equal(3, usage.Entries);
        Assert.Equal(1, usage.Evictions);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task Eviction_goes_down_to_the_low_watermark()
    {
        var budget = new NamespaceBudget(10 * MB, 5 * MB);
        for (var i = 0; i < 5; i++)
        {
            await Commit($"k{i}", Layer($"k{i}", 2 * MB), budget);
        }

        var outcome = await Commit("k5", Layer("k5", 2 * MB), budget); // 12 MB > 10 MB: evict to <= 5 MB
        Assert.Equal([KeyOf("k0"), KeyOf("k1"), KeyOf("k2"), KeyOf("k3")], outcome.Evicted);
        Assert.Equal(4 * MB, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);
    }

    [Fact]
    public async Task Past_the_entry_limit_a_commit_evicts_the_least_recently_used_however_small_their_blobs()
    {
        var budget = new NamespaceBudget(10 * MB, 9 * MB, MaxEntries: 3);
        var tiny = Layer("shared", 1);
        for (var i = 0; i < 3; i++)
        {
            await Commit($"k{i}", tiny, budget);
        }

        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("k0"), Ct)); // "k1" is now the least recently used
        var fourth = await Commit("k3", tiny, budget);
        Assert.Equal([KeyOf("k1")], fourth.Evicted);
        var tagged = await Index.PutTagAsync(Ns, "latest", NewEntry.ForLayer(KeyOf("tagged"), tiny), budget, Ct);
        Assert.Equal([KeyOf("k2")], tagged.Evicted);

        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal((3L, 1L, 2L), (usage.Entries, usage.StoredBytes, usage.Evictions));
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task Shared_blobs_count_once_and_stay_while_any_entry_references_them()
    {
        var shared = Layer("shared", 4 * MB);
        await Commit("a", shared);
        await Commit("b", shared);
        Assert.Equal(4 * MB, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);

        Assert.Equal(1, await Index.DeleteAsync(Ns, [KeyOf("a")], Ct));
        Assert.Equal(4 * MB, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);
        Time.Advance(TimeSpan.FromDays(1));
        Assert.Empty(await TakeOwnCollectable(Time.GetUtcNow()));

        Assert.Equal(1, await Index.DeleteAsync(Ns, [KeyOf("b")], Ct));
        Assert.Equal(0, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task An_entry_keeps_a_list_of_blobs_alive_and_is_evicted_with_all_of_them()
    {
        var budget = new NamespaceBudget(10 * MB, 9 * MB);
        var manifest = Layer("manifest", 1 * MB);
        var config = new BlobRef(Digest.Of("config"u8), 1 * MB);
        var layer = new BlobRef(Digest.Of("layer"u8), 4 * MB);
        await Index.CommitAsync(Ns, new NewEntry(KeyOf("tag"), manifest, [new BlobRef(manifest.Digest, manifest.Size), config, layer], ""), budget, Ct);
        Assert.Equal(6 * MB, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);

        var outcome = await Commit("big", Layer("big", 5 * MB), budget);
        Assert.Equal([KeyOf("tag")], outcome.Evicted);
        Assert.Equal(5 * MB, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);

        var collectable = await TakeOwnCollectable(Time.GetUtcNow());
        Assert.Equal(
            new[] { manifest.Digest, config.Digest, layer.Digest }.Select(d => d.Value).Order(),
            collectable.Select(c => c.Digest.Value).Order());
    }

    [Fact]
    public async Task An_entry_larger_than_the_budget_is_refused_and_nothing_changes()
    {
        var budget = new NamespaceBudget(10 * MB, 9 * MB);
        await Commit("small", Layer("small", 1 * MB), budget);
        await Assert.ThrowsAsync<QuotaExceededException>(() => Commit("huge", Layer("huge", 11 * MB), budget));
        Assert.Null(await Index.LookupAsync(Ns, KeyOf("huge"), Ct));
        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("small"), Ct));
        Assert.Equal(1 * MB, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);
    }

    [Fact]
    public async Task Unreferenced_blobs_become_collectable_only_after_the_grace_period()
    {
        var layer = Layer("gone", 10);
        await Commit("gone", layer);
        await Index.DeleteAsync(Ns, [KeyOf("gone")], Ct);
        var grace = TimeSpan.FromMinutes(10);

        Time.Advance(TimeSpan.FromMinutes(9));
        Assert.Empty(await TakeOwnCollectable(Time.GetUtcNow() - grace));

        Time.Advance(TimeSpan.FromMinutes(1));
        var due = await TakeOwnCollectable(Time.GetUtcNow() - grace);
        Assert.Equal([new CollectableBlob(Ns, layer.Digest)], due);
        Assert.Empty(await TakeOwnCollectable(Time.GetUtcNow() - grace)); // handed out once
    }

    [Fact]
    public async Task A_blob_referenced_again_within_the_grace_period_is_not_collected()
    {
        var layer = Layer("revived", 10);
        await Commit("old", layer);
        await Index.DeleteAsync(Ns, [KeyOf("old")], Ct);
        Time.Advance(TimeSpan.FromMinutes(5));
        await Commit("new", layer);
        Time.Advance(TimeSpan.FromDays(1));
        Assert.Empty(await TakeOwnCollectable(Time.GetUtcNow()));
        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("new"), Ct));
    }

    [Fact]
    public async Task A_blob_is_in_use_while_referenced_and_while_it_waits_out_its_grace_period()
    {
        var layer = Layer("used", 10);
        Assert.False(await Index.IsBlobInUseAsync(Ns, layer.Digest, Ct));
        await Commit("used", layer);
        Assert.True(await Index.IsBlobInUseAsync(Ns, layer.Digest, Ct));
        Assert.False(await Index.IsBlobInUseAsync(UniqueNamespace(), layer.Digest, Ct));

        await Index.DeleteAsync(Ns, [KeyOf("used")], Ct);
        Assert.True(await Index.IsBlobInUseAsync(Ns, layer.Digest, Ct)); // queued for collection
        Time.Advance(TimeSpan.FromHours(1));
        Assert.Single(await TakeOwnCollectable(Time.GetUtcNow()));
        Assert.False(await Index.IsBlobInUseAsync(Ns, layer.Digest, Ct));
    }

    [Fact]
    public async Task Delete_all_drops_every_key_of_the_namespace_only()
    {
        var other = UniqueNamespace();
        await Commit("a", Layer("a", 1));
        await Commit("b", Layer("b", 2));
        await Commit("a", Layer("a", 1), ns: other);

        Assert.Equal(2, await Index.DeleteAllAsync(Ns, Ct));
        Assert.Null(await Index.LookupAsync(Ns, KeyOf("a"), Ct));
        Assert.NotNull(await Index.LookupAsync(other, KeyOf("a"), Ct));
        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal(0, usage.Entries);
        Assert.Equal(0, usage.StoredBytes);
        Assert.Equal(0, await Index.DeleteAsync(Ns, [KeyOf("a")], Ct));
    }

    [Fact]
    public async Task Repair_removes_every_entry_that_references_a_blob()
    {
        var broken = Layer("broken", 5);
        await Commit("a", broken);
        await Commit("b", broken);
        await Commit("c", Layer("fine", 7));

        Assert.Equal(2, await Index.RemoveEntriesReferencingAsync(Ns, broken.Digest, Ct));
        Assert.Null(await Index.LookupAsync(Ns, KeyOf("a"), Ct));
        Assert.Null(await Index.LookupAsync(Ns, KeyOf("b"), Ct));
        Assert.NotNull(await Index.LookupAsync(Ns, KeyOf("c"), Ct));
        Assert.Equal(7, (await Index.GetUsageAsync(Ns, Ct)).StoredBytes);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task Usage_counters_add_up_per_namespace()
    {
        await Index.RecordUsageAsync(Ns, new UsageDelta(Lookups: 4, Hits: 3, BytesUploaded: 100, BytesDownloaded: 50), Ct);
        await Index.RecordUsageAsync(Ns, new UsageDelta(Lookups: 1, BytesDownloaded: 5), Ct);
        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal((5L, 3L, 2L, 100L, 55L), (usage.Lookups, usage.Hits, usage.Misses, usage.BytesUploaded, usage.BytesDownloaded));
        Assert.Equal(0.6, usage.HitRatio, 9);
        Assert.Equal(0, (await Index.GetUsageAsync(UniqueNamespace(), Ct)).Lookups);
    }

    [Fact]
    public async Task Namespaces_are_isolated()
    {
        var other = UniqueNamespace();
        await Commit("k", Layer("mine", 1));
        Assert.Null(await Index.LookupAsync(other, KeyOf("k"), Ct));
        Assert.Equal(0, (await Index.GetUsageAsync(other, Ct)).Entries);
    }

    [Fact]
    public async Task Ten_thousand_random_operations_from_eight_tasks_keep_the_invariants()
    {
        var budget = new NamespaceBudget(600, 450);
        var overBudget = 0;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(task => Task.Run(async () =>
        {
            var random = new Random(task);
            for (var i = 0; i < 1250; i++)
            {
                var key = $"k{random.Next(200)}";
                var blob = random.Next(40);
                switch (random.Next(4))
                {
                    case 0: await Index.LookupAsync(Ns, KeyOf(key), Ct); break;
                    case 1: await Index.DeleteAsync(Ns, [KeyOf(key)], Ct); break;
                    default:
                        await Commit(key, Layer($"blob {blob}", 1 + blob), budget);
                        if ((await Index.GetUsageAsync(Ns, Ct)).StoredBytes > budget.HighWatermarkBytes)
                        {
                            Interlocked.Increment(ref overBudget);
                        }

                        break;
                }
            }
        })));

        Assert.Equal(0, overBudget);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
        Assert.True((await Index.GetUsageAsync(Ns, Ct)).Evictions > 0, "the budget never forced an eviction; the test would prove little");
    }
}
