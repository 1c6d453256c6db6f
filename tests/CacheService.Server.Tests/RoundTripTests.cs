using CacheService.Api.V1;
using CacheService.Testing;
using Grpc.Core;

namespace CacheService.Server.Tests;

public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await TestServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The round trip a builder makes: upload, commit, look up, resolve, download, stats.</summary>
public sealed class RoundTripTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private readonly LayerCache.LayerCacheClient _client = fixture.Server.Client;

    [Fact]
    public async Task A_three_megabyte_layer_makes_the_whole_round_trip()
    {
        const string ns = "roundtrip/main";
        var data = Layers.Random(3 * 1024 * 1024, seed: 1);
        var upload = await Layers.UploadAsync(_client, ns, data);
        Assert.False(upload.AlreadyExisted);
        Assert.Equal(Layers.DigestOf(data), upload.Layer.Digest);

        var layer = Layers.Descriptor(data);
        var commit = await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = Layers.Key("step"), Layer = layer });
        Assert.True(commit.Created);

        var lookup = await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("step") });
        Assert.True(lookup.Hit);
        Assert.False(lookup.Degraded);
        Assert.Equal(layer, lookup.Layer);
        Assert.Equal(ns, lookup.Namespace);

        Assert.Equal(data, await Layers.DownloadAsync(_client, ns, layer.Digest));
        Assert.Equal(data[1_234_567..], await Layers.DownloadAsync(_client, ns, layer.Digest, offset: 1_234_567));

        var stats = await _client.GetStatsAsync(new GetStatsRequest { Namespace = ns });
        Assert.Equal((1L, 1L, 0L, 1.0, 1L, data.LongLength), (stats.Lookups, stats.Hits, stats.Misses, stats.HitRatio, stats.Entries, stats.StoredBytes));
        Assert.Equal(data.Length, stats.BytesUploaded);
        Assert.Equal(data.Length + (data.Length - 1_234_567), stats.BytesDownloaded);
    }

    [Fact]
    public async Task A_miss_is_not_an_error_and_counts_as_a_miss()
    {
        const string ns = "roundtrip/misses";
        var lookup = await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("never") });
        Assert.False(lookup.Hit);
        Assert.Null(lookup.Layer);
        var stats = await _client.GetStatsAsync(new GetStatsRequest { Namespace = ns });
        Assert.Equal((1L, 0L, 1L, 0.0), (stats.Lookups, stats.Hits, stats.Misses, stats.HitRatio));
    }

    [Fact]
    public async Task Fallback_namespaces_are_read_in_order_and_the_answer_names_the_one_that_hit()
    {
        var data = Layers.Random(10_000, seed: 2);
        var layer = await Layers.UploadAndCommitAsync(_client, "team/main", "shared", data);

        var lookup = await _client.LookupAsync(new LookupRequest
        {
            Namespace = "team/pr-42",
            Key = Layers.Key("shared"),
            FallbackNamespaces = { "team/other", "team/main" },
        });

        Assert.True(lookup.Hit);
        Assert.Equal("team/main", lookup.Namespace);
        Assert.Equal(layer, lookup.Layer);
        Assert.Equal(1, (await _client.GetStatsAsync(new GetStatsRequest { Namespace = "team/pr-42" })).Hits);
    }

    [Fact]
    public async Task Uploading_a_stored_blob_again_ends_early()
    {
        const string ns = "roundtrip/again";
        var data = Layers.Random(2 * 1024 * 1024, seed: 3);
        await Layers.UploadAsync(_client, ns, data);
        var again = await Layers.UploadAsync(_client, ns, data);
        Assert.True(again.AlreadyExisted);
    }

    [Fact]
    public async Task An_upload_that_does_not_match_its_digest_is_refused_and_leaves_nothing()
    {
        const string ns = "roundtrip/bad-upload";
        var data = Layers.Random(500_000, seed: 4);
        var claimed = Layers.DigestOf(Layers.Random(500_000, seed: 5));

        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(_client, ns, data, digest: claimed));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("digest", e.Status.Detail, StringComparison.Ordinal);

        var stat = await _client.StatLayersAsync(new StatLayersRequest { Namespace = ns, Digests = { claimed, Layers.DigestOf(data) } });
        Assert.Empty(stat.Present);
        Assert.False(File.Exists(fixture.Server.BlobPath(ns, claimed)));
        Assert.Empty(Directory.GetFiles(Path.Combine(fixture.Server.DataDirectory, "blobs", ".uploads")));
    }

    [Fact]
    public async Task An_upload_shorter_than_declared_is_refused()
    {
        var data = Layers.Random(100_000, seed: 6);
        var e = await Assert.ThrowsAsync<RpcException>(() => Layers.UploadAsync(_client, "roundtrip/short", data, size: data.Length + 1));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("size", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Committing_a_layer_whose_blob_is_absent_fails_its_precondition()
    {
        var layer = Layers.Descriptor(Layers.Random(100, seed: 7));
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.CommitAsync(new CommitRequest { Namespace = "roundtrip/absent", Key = Layers.Key("absent"), Layer = layer }));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
    }

    [Fact]
    public async Task Committing_with_the_wrong_size_fails_its_precondition()
    {
        const string ns = "roundtrip/size";
        var data = Layers.Random(1000, seed: 8);
        await Layers.UploadAsync(_client, ns, data);
        var layer = Layers.Descriptor(data);
        layer.Size = 999;
        var e = await Assert.ThrowsAsync<RpcException>(async () =>
            await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = Layers.Key("size"), Layer = layer }));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
    }

    [Fact]
    public async Task A_second_commit_of_a_key_to_another_layer_leaves_the_first_in_place()
    {
        const string ns = "roundtrip/first-wins";
        var first = await Layers.UploadAndCommitAsync(_client, ns, "k", Layers.Random(1000, seed: 9));
        var otherData = Layers.Random(2000, seed: 10);
        await Layers.UploadAsync(_client, ns, otherData);

        var second = await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = Layers.Key("k"), Layer = Layers.Descriptor(otherData) });
        Assert.False(second.Created);
        Assert.Equal(first, second.Layer);
        Assert.Equal(first, (await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("k") })).Layer);
        var same = await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = Layers.Key("k"), Layer = first });
        Assert.False(same.Created);
    }

    [Fact]
    public async Task StatLayers_tells_present_from_missing()
    {
        const string ns = "roundtrip/stat";
        var data = Layers.Random(4321, seed: 11);
        await Layers.UploadAsync(_client, ns, data);
        var missing = Layers.DigestOf([1, 2, 3]);
        var stat = await _client.StatLayersAsync(new StatLayersRequest { Namespace = ns, Digests = { Layers.DigestOf(data), missing } });
        Assert.Equal(Layers.DigestOf(data), Assert.Single(stat.Present).Digest);
        Assert.Equal(4321, stat.Present[0].Size);
        Assert.Equal([missing], stat.Missing);
    }

    [Fact]
    public async Task Delete_drops_the_named_keys_or_all()
    {
        const string ns = "roundtrip/delete";
        await Layers.UploadAndCommitAsync(_client, ns, "a", Layers.Random(10, seed: 12));
        await Layers.UploadAndCommitAsync(_client, ns, "b", Layers.Random(10, seed: 13));
        await Layers.UploadAndCommitAsync(_client, ns, "c", Layers.Random(10, seed: 14));

        Assert.Equal(1, (await _client.DeleteAsync(new DeleteRequest { Namespace = ns, Keys = { Layers.Key("a"), Layers.Key("zzz") } })).Deleted);
        Assert.False((await _client.LookupAsync(new LookupRequest { Namespace = ns, Key = Layers.Key("a") })).Hit);
        Assert.Equal(2, (await _client.DeleteAsync(new DeleteRequest { Namespace = ns, All = true })).Deleted);
        Assert.Equal(0, (await _client.GetStatsAsync(new GetStatsRequest { Namespace = ns })).Entries);
    }

    [Fact]
    public async Task Commit_with_key_inputs_checks_that_they_derive_the_key()
    {
        const string ns = "roundtrip/inputs";
        var data = Layers.Random(100, seed: 15);
        await Layers.UploadAsync(_client, ns, data);
        var step = new StepInput { Instruction = "RUN make" };
        var parent = Layers.DigestOf([42]);
        var key = (await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux/amd64", Step = step })).Key;

        var ok = await _client.CommitAsync(new CommitRequest { Namespace = ns, Key = key, Layer = Layers.Descriptor(data), ParentState = parent, Platform = "linux/amd64", Step = step });
        Assert.True(ok.Created);

        var e = await Assert.ThrowsAsync<RpcException>(async () => await _client.CommitAsync(new CommitRequest
        {
            Namespace = ns,
            Key = Layers.Key("other"),
            Layer = Layers.Descriptor(data),
            ParentState = parent,
            Platform = "linux/amd64",
            Step = step,
        }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith("key:", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ComputeKey_normalizes_and_says_whether_the_step_adds_a_layer()
    {
        var parent = Layers.DigestOf([1]);
        var a = await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux/amd64", Step = new StepInput { Instruction = "run  make \\\n  all" } });
        var b = await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux/amd64", Step = new StepInput { Instruction = "RUN make all" } });
        var env = await _client.ComputeKeyAsync(new ComputeKeyRequest { ParentState = parent, Platform = "linux/amd64", Step = new StepInput { Instruction = "ENV A=1" } });
        Assert.Equal(b.Key, a.Key);
        Assert.Equal("RUN make all", a.NormalizedInstruction);
        Assert.True(a.LayerStep);
        Assert.False(env.LayerStep);
    }
}
