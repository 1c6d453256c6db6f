using CacheService.Blobs.S3;
using CacheService.Contracts;
using CacheService.Core;
using CacheService.Core.Blobs;
using CacheService.Core.Index;
using CacheService.Index.Sqlite;
using CacheService.Testing;

namespace CacheService.Integration.Tests;

// Runs alone: it holds the allocation measurement of a 256 MiB upload, which other test
// classes running in parallel would pollute (GC counters are process-wide).
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SharedRgw : ICollectionFixture<RgwServer>
{
    public const string Name = "Ceph RGW";
}

/// <summary>The blob contract on a real Ceph RGW, plus what only the S3 engine must show.</summary>
[Collection(SharedRgw.Name)]
public sealed class S3BlobStoreTests(RgwServer rgw) : BlobStoreContract
{
    private readonly HttpClient _http = new();

    protected override IBlobStore CreateStore()
    {
        var options = rgw.Options();
        var store = new S3BlobStore(S3BlobStore.CreateClient(options), _http, options);
        store.EnsureBucketAsync(CancellationToken.None).GetAwaiter().GetResult();
        return store;
    }

    protected override ILayerIndex CreateIndex(string directory, TimeProvider time) =>
        new SqliteLayerIndex(Path.Combine(directory, "index.db"), time);

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("-00:00:01")]
    [InlineData("2.00:00:00")]
    public void An_idle_timeout_of_zero_negative_or_days_is_refused(string idle)
    {
        var options = rgw.Options();
        options.IdleTimeout = TimeSpan.Parse(idle, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains("IdleTimeout must be between 100 ms and 1 hour", options.Validate());
    }

    [Fact]
    public void A_negative_local_copy_budget_is_refused()
    {
        var options = rgw.Options();
        options.LocalCopyBytes = -1;
        Assert.Contains("LocalCopyBytes must not be negative (0 keeps no local copies)", options.Validate());
    }

    // Issue 13, finding 13: a store that refuses us (403 for a wrong or expired key) cannot serve
    // blobs: that is an outage the breaker counts and callers degrade on, not an internal error.
    [Fact]
    public async Task Answers_refused_for_bad_credentials_are_outages_on_every_call()
    {
        var options = rgw.Options();
        options.SecretKey = "not-the-secret";
        var store = new S3BlobStore(S3BlobStore.CreateClient(options), _http, options);
        var digest = Digest.Of([1, 2, 3]);
        await Assert.ThrowsAsync<BackendUnavailableException>(() => store.GetSizeAsync(Ns, digest, Ct));
        await Assert.ThrowsAsync<BackendUnavailableException>(() => store.OpenReadAsync(Ns, digest, 0, Ct));
        await Assert.ThrowsAsync<BackendUnavailableException>(() => store.DeleteAsync(Ns, digest, Ct));
        await Assert.ThrowsAsync<BackendUnavailableException>(async () =>
        {
            await foreach (var _ in store.ListAsync(Ct))
            {
            }
        });
    }

    // Issue 13, finding 17: a direct upload a client never completed must not stay in the bucket.
    [Fact]
    public async Task Staged_direct_uploads_never_completed_are_swept_once_old_and_fresh_ones_are_kept()
    {
        var store = (S3BlobStore)Store;
        var staged = await store.PresignUploadAsync(Ns, Ct);
        using (var put = await _http.PutAsync(staged.Url, new ByteArrayContent([1, 2, 3])))
        {
            put.EnsureSuccessStatusCode();
        }

        Assert.Equal(0, await store.SweepStagedUploadsAsync(DateTimeOffset.UtcNow.AddHours(-1), Ct)); // fresh: a client may still complete it
        Assert.Equal(1, await store.SweepStagedUploadsAsync(DateTimeOffset.UtcNow.AddMinutes(1), Ct));
        await Assert.ThrowsAsync<PreconditionFailedException>(() => store.PromoteUploadAsync(Ns, staged.UploadId!, Digest.Of([1, 2, 3]), 3, Ct));
    }

    [Fact]
    public async Task Storing_a_large_blob_allocates_far_less_than_its_size()
    {
        const long size = 256L << 20;
        var digest = GeneratedBlobStream.DigestOf(size);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await Store.PutAsync(Ns, digest, size, new GeneratedBlobStream(size), Ct);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        Assert.Equal(size, await Store.GetSizeAsync(Ns, digest, Ct));
        Assert.True(allocated < 16L << 20, $"allocated {allocated} bytes to store {size}");
    }

    [Fact]
    public async Task A_layer_over_the_single_upload_limit_is_refused_before_any_byte_is_read()
    {
        var e = await Assert.ThrowsAsync<InvalidFieldException>(() =>
            Store.PutAsync(Ns, Digest.Of([1]), S3BlobStore.MaxSinglePutBytes + 1, new MemoryStream(), Ct));
        Assert.Equal("size", e.Field);
    }

    [Fact]
    public async Task An_unreachable_endpoint_is_an_unavailable_backend()
    {
        var options = rgw.Options();
        options.Endpoint = $"http://127.0.0.1:{ServiceScripts.FreePort()}";
        var dead = new S3BlobStore(S3BlobStore.CreateClient(options), _http, options);
        await Assert.ThrowsAsync<BackendUnavailableException>(() => dead.GetSizeAsync(Ns, Digest.Of([1]), Ct));
        await Assert.ThrowsAsync<BackendUnavailableException>(() => dead.OpenReadAsync(Ns, Digest.Of([1]), 0, Ct));
    }
}
