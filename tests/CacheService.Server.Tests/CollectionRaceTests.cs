using CacheService.Api.V1;
using CacheService.Blobs.FileSystem;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace CacheService.Server.Tests;

/// <summary>
/// The collector and the orphan sweep against a commit of the same blob (issue 13, finding 12):
/// whichever way the steps interleave, no entry stays behind a deleted blob, so a lookup never
/// answers a hit whose bytes are gone.
/// </summary>
public sealed class CollectionRaceTests : IAsyncLifetime
{
    private const string Ns = "race/main";
    private readonly GatedStore.Gate _deletes = new();
    private readonly GatedStore.Gate _commits = new();
    private TestServer _server = null!;
    private byte[] _data = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync(services =>
        {
            services.AddSingleton<IBlobStore>(sp => new GatedStore(sp.GetRequiredService<FileSystemBlobStore>(), _deletes));
            services.AddSingleton<ILayerIndex>(sp => new GatedIndex(sp.GetRequiredService<SqliteLayerIndex>(), _commits));
        });

        // A blob whose only entry went: it waits out its grace period in the collection queue.
        _data = Layers.Random(10_000, 1);
        await Layers.UploadAndCommitAsync(_server.Client, Ns, "old", _data);
        await _server.Client.DeleteAsync(new DeleteRequest { Namespace = Ns, Keys = { Layers.Key("old") } });
        _server.Time.Advance(TimeSpan.FromMinutes(11));
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<CommitResponse> CommitAgainAsync() =>
        _server.Client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key("new"), Layer = Layers.Descriptor(_data) }).ResponseAsync;

    private async Task<bool> HitAsync() => (await _server.Client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("new") })).Hit;

    [Fact]
    public async Task A_commit_that_lands_while_the_collector_deletes_its_blob_is_removed_by_the_collector()
    {
        var collector = _server.Services.GetRequiredService<BlobCollector>();
        _deletes.Close();
        var collecting = collector.CollectOnceAsync(TimeSpan.FromMinutes(10), CancellationToken.None); // took the blob, waits to delete it
        await _deletes.Reached.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True((await CommitAgainAsync()).Created); // the blob is still there: the commit is good so far
        _deletes.Open();
        Assert.Equal(1, await collecting);

        Assert.False(File.Exists(_server.BlobPath(Ns, Layers.DigestOf(_data))));
        Assert.False(await HitAsync());
    }

    [Fact]
    public async Task A_commit_that_checked_its_blob_before_the_collector_deleted_it_is_refused_and_leaves_no_entry()
    {
        _commits.Close();
        var committing = CommitAgainAsync(); // found the blob stored, waits to write its entry
        await _commits.Reached.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(1, await _server.Services.GetRequiredService<BlobCollector>().CollectOnceAsync(TimeSpan.FromMinutes(10), CancellationToken.None));
        _commits.Open();
        var e = await Assert.ThrowsAsync<RpcException>(() => committing);
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Contains("upload it again", e.Status.Detail, StringComparison.Ordinal);
        Assert.False(await HitAsync());

        await Layers.UploadAsync(_server.Client, Ns, _data); // and the builder's retry goes through
        Assert.True((await CommitAgainAsync()).Created);
        Assert.True(await HitAsync());
    }

    [Fact]
    public async Task A_commit_that_lands_while_the_orphan_sweep_deletes_its_blob_is_removed_by_the_sweep()
    {
        var orphan = Layers.Random(10_000, 2); // uploaded, never committed
        await Layers.UploadAsync(_server.Client, Ns, orphan);
        _server.Time.Advance(TimeSpan.FromMinutes(11));
        File.SetLastWriteTimeUtc(_server.BlobPath(Ns, Layers.DigestOf(orphan)), _server.Time.GetUtcNow().UtcDateTime.AddMinutes(-11));

        _deletes.Close();
        var sweeping = _server.Services.GetRequiredService<OrphanSweeper>().SweepOnceAsync(TimeSpan.FromMinutes(10), CancellationToken.None);
        await _deletes.Reached.WaitAsync(TimeSpan.FromSeconds(30));
        var commit = await _server.Client.CommitAsync(new CommitRequest { Namespace = Ns, Key = Layers.Key("orphan"), Layer = Layers.Descriptor(orphan) });
        Assert.True(commit.Created);
        _deletes.Open();
        await sweeping;

        Assert.False((await _server.Client.LookupAsync(new LookupRequest { Namespace = Ns, Key = Layers.Key("orphan") })).Hit);
    }

    /// <summary>The real store, whose deletes wait at a gate while it is closed.</summary>
    private sealed class GatedStore(IBlobStore inner, GatedStore.Gate gate) : BlobStoreDecorator(inner)
    {
        public override async Task<bool> DeleteAsync(string ns, Digest digest, CancellationToken cancellationToken)
        {
            await gate.PassAsync();
            return await base.DeleteAsync(ns, digest, cancellationToken);
        }

        /// <summary>Open by default; while closed, callers wait and <see cref="Reached"/> says one arrived.</summary>
        internal sealed class Gate
        {
            private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
            private volatile TaskCompletionSource? _closed;

            public Task Reached => _reached.Task;

            public void Close() => _closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

            public void Open()
            {
                var closed = _closed;
                _closed = null;
                closed?.SetResult();
            }

            public async Task PassAsync()
            {
                if (_closed is { } closed)
                {
                    _reached.TrySetResult();
                    await closed.Task;
                }
            }
        }
    }

    /// <summary>The real index, whose commits wait at a gate while it is closed.</summary>
    private sealed class GatedIndex(ILayerIndex inner, GatedStore.Gate gate) : LayerIndexDecorator(inner)
    {
        public override async Task<CommitOutcome> CommitAsync(string ns, NewEntry entry, NamespaceBudget budget, CancellationToken cancellationToken)
        {
            await gate.PassAsync();
            return await base.CommitAsync(ns, entry, budget, cancellationToken);
        }
    }
}
