using CacheService.Core;
using CacheService.Core.Index;

namespace CacheService.Contracts;

/// <summary>The contract of tags: first-class in the index, listed without a scan, repointed atomically.</summary>
public abstract partial class LayerIndexContract
{
    private Task<CommitOutcome> Tag(string tag, LayerDescriptor layer, NamespaceBudget? budget = null) =>
        Index.PutTagAsync(Ns, tag, NewEntry.ForLayer(KeyOf("tag " + tag), layer), budget ?? Unlimited, Ct);

    private async Task<List<string>> TagNames(string? after = null, int limit = 1000) =>
        [.. (await Index.ListTagsAsync(Ns, after, limit, Ct)).Select(t => t.Tag)];

    [Fact]
    public async Task Tags_are_listed_in_order_with_their_layer_and_page_after_a_tag()
    {
        await Tag("v2", Layer("m2", 10));
        await Tag("latest", Layer("m1", 10));
        await Tag("v10", Layer("m3", 10));
        await Commit("plain", Layer("p", 10)); // an entry that is no tag

        var tags = await Index.ListTagsAsync(Ns, null, 10, Ct);
        Assert.Equal(["latest", "v10", "v2"], tags.Select(t => t.Tag));
        Assert.Equal(Layer("m1", 10), tags[0].Layer);
        Assert.Equal(KeyOf("tag latest"), tags[0].Key);
        Assert.Equal(["latest", "v10"], await TagNames(limit: 2));
        Assert.Equal(["v2"], await TagNames(after: "v10"));
        Assert.Empty(await TagNames(after: "v2"));
        Assert.Empty(await Index.ListTagsAsync(UniqueNamespace(), null, 10, Ct));
    }

    [Fact]
    public async Task A_tag_page_of_zero_or_less_is_empty_and_any_after_string_pages_by_order()
    {
        await Tag("a", Layer("ta", 10));
        await Tag("c", Layer("tc", 10));
        Assert.Empty(await TagNames(limit: 0));
        Assert.Empty(await TagNames(limit: -5));
        Assert.Equal(["c"], await TagNames(after: "b")); // not a tag itself
        Assert.Equal(["a", "c"], await TagNames(after: ""));
        Assert.Empty(await TagNames(after: "\uffff garbage"));
    }

    [Fact]
    public async Task Repointing_a_tag_replaces_its_entry_and_moves_its_blob_references()
    {
        var old = Layer("old manifest", 100);
        var next = Layer("new manifest", 200);
        Assert.True((await Tag("latest", old)).Created);
        Time.Advance(TimeSpan.FromMinutes(1));

        var moved = await Tag("latest", next);
        Assert.True(moved.Created);
        Assert.Equal(next, moved.Entry.Layer);
        Assert.Equal(next, (await Index.LookupAsync(Ns, KeyOf("tag latest"), Ct))!.Layer);
        Assert.Equal(["latest"], await TagNames());
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
        var usage = await Index.GetUsageAsync(Ns, Ct);
        Assert.Equal((1, 200), (usage.Entries, usage.StoredBytes));
        Assert.Equal([old.Digest], (await TakeOwnCollectable(Time.GetUtcNow())).Select(b => b.Digest)); // the old target's blob lost its last reference

        var again = await Tag("latest", next); // the same target again changes nothing
        Assert.False(again.Created);
        Assert.Equal(next, again.Entry.Layer);
        Assert.Equal(1, (await Index.GetUsageAsync(Ns, Ct)).Entries);
    }

    [Fact]
    public async Task A_tag_leaves_the_list_with_its_entry_when_deleted_evicted_or_repaired()
    {
        await Tag("deleted", Layer("a", 10));
        await Tag("repaired", Layer("b", 10));
        await Tag("evicted", Layer("c", 10));
        await Tag("kept", Layer("d", 10));

        await Index.DeleteAsync(Ns, [KeyOf("tag deleted")], Ct);
        await Index.RemoveEntriesReferencingAsync(Ns, Layer("b", 10).Digest, Ct);
        await Index.LookupAsync(Ns, KeyOf("tag kept"), Ct); // "evicted" is now the least recently used
        await Commit("big", Layer("e", 15), new NamespaceBudget(30, 25));

        Assert.Equal(["kept"], await TagNames());
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }

    [Fact]
    public async Task A_repoint_over_the_budget_is_refused_and_the_tag_keeps_its_target()
    {
        var old = Layer("small", 10);
        await Tag("latest", old, new NamespaceBudget(100, 80));
        await Assert.ThrowsAsync<QuotaExceededException>(() => Tag("latest", Layer("huge", 500), new NamespaceBudget(100, 80)));
        Assert.Equal(old, (await Index.LookupAsync(Ns, KeyOf("tag latest"), Ct))!.Layer);
        Assert.Equal(["latest"], await TagNames());
    }

    [Fact]
    public async Task A_reader_never_finds_a_tag_missing_while_it_is_repointed()
    {
        var layers = new[] { Layer("one", 10), Layer("two", 20) };
        await Tag("moving", layers[0]);
        using var done = new CancellationTokenSource();
        var misses = 0;
        var reader = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                if (await Index.LookupAsync(Ns, KeyOf("tag moving"), Ct) is null)
                {
                    Interlocked.Increment(ref misses);
                }
            }
        });

        for (var i = 1; i <= 200; i++)
        {
            await Tag("moving", layers[i % 2]);
        }

        await done.CancelAsync();
        await reader;
        Assert.Equal(0, misses);
        Assert.Equal(layers[0], (await Index.LookupAsync(Ns, KeyOf("tag moving"), Ct))!.Layer);
        Assert.Empty(await Index.VerifyAsync(Ns, Ct));
    }
}
