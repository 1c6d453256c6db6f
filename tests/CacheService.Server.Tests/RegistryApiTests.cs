using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Testing;

namespace CacheService.Server.Tests;

/// <summary>The OCI Distribution API of the real server in process, spoken over plain HTTP.</summary>
public sealed class RegistryApiTests : IAsyncLifetime, IDisposable
{
    private readonly HttpClient _http = new();
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync("--CacheService:Eviction:NamespaceBudgetBytes:oci/small=5000");
        _http.BaseAddress = new Uri($"http://127.0.0.1:{_server.HttpPort}");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _http.Dispose();

    private static string DigestOf(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    private static async Task<string> ErrorCode(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")[0].GetProperty("code").GetString()!;

    [Fact]
    public async Task A_tag_being_repointed_never_answers_404_to_a_concurrent_pull()
    {
        var first = await _http.PushImageAsync("oci/moving", "latest", seed: 70);
        var second = await _http.PushImageAsync("oci/moving", "other", seed: 71);
        using var done = new CancellationTokenSource();
        var misses = 0;
        var readers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                using var pull = await _http.GetAsync("/v2/oci/moving/manifests/latest");
                if (pull.StatusCode == HttpStatusCode.NotFound)
                {
                    Interlocked.Increment(ref misses);
                }
            }
        })).ToList();

        for (var i = 1; i <= 200; i++)
        {
            using var push = await _http.PutManifestAsync("oci/moving", "latest", i % 2 == 1 ? second.Manifest : first.Manifest);
            Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        }

        await done.CancelAsync();
        await Task.WhenAll(readers);
        Assert.Equal(0, misses);
        using var final = await _http.GetAsync("/v2/oci/moving/manifests/latest");
        Assert.Equal(first.Digest, final.Headers.GetValues("Docker-Content-Digest").Single());
        var tags = JsonDocument.Parse(await _http.GetStringAsync("/v2/oci/moving/tags/list")).RootElement.GetProperty("tags");
        Assert.Equal(["latest", "other"], tags.EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task The_version_check_answers_with_the_api_version_header()
    {
        using var response = await _http.GetAsync("/v2/");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("registry/2.0", response.Headers.GetValues("Docker-Distribution-API-Version").Single());
    }

    [Fact]
    public async Task A_chunked_upload_reports_its_range_and_publishes_only_verified_bytes()
    {
        var data = Layers.Random(300_000, 1);
        using var start = await _http.PostAsync("/v2/oci/app/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location!.ToString();

        var first = new ByteArrayContent(data[..100_000]);
        first.Headers.TryAddWithoutValidation("Content-Range", "0-99999");
        using var patch = await _http.PatchAsync(location, first);
        Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
        Assert.Equal("0-99999", patch.Headers.NonValidated["Range"].ToString());

        using var status = await _http.GetAsync(location);
        Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
        Assert.Equal("0-99999", status.Headers.NonValidated["Range"].ToString());

        var wrong = new ByteArrayContent(data[..10]);
        wrong.Headers.TryAddWithoutValidation("Content-Range", "0-9");
        using var misplaced = await _http.PatchAsync(location, wrong);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, misplaced.StatusCode);

        using var done = await _http.PutAsync($"{location}?digest={DigestOf(data)}", new ByteArrayContent(data[100_000..]));
        Assert.Equal(HttpStatusCode.Created, done.StatusCode);
        Assert.Equal(DigestOf(data), done.Headers.GetValues("Docker-Content-Digest").Single());
        Assert.Equal(data, await _http.GetByteArrayAsync($"/v2/oci/app/blobs/{DigestOf(data)}"));
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync(location)).StatusCode); // the session is over
    }

    [Fact]
    public async Task Bytes_that_do_not_match_their_digest_are_refused_and_leave_nothing()
    {
        var data = Layers.Random(5000, 2);
        var claimed = DigestOf(Layers.Random(5000, 3));
        using var response = await _http.PostAsync($"/v2/oci/app/blobs/uploads/?digest={claimed}", new ByteArrayContent(data));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("DIGEST_INVALID", await ErrorCode(response));
        using var head = new HttpRequestMessage(HttpMethod.Head, $"/v2/oci/app/blobs/{claimed}");
        Assert.Equal(HttpStatusCode.NotFound, (await _http.SendAsync(head)).StatusCode);
    }

    [Fact]
    public async Task Blobs_serve_ranges_and_mount_across_repositories()
    {
        var data = Layers.Random(10_000, 4);
        var digest = await _http.PushBlobAsync("oci/app", data);
        using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/v2/oci/app/blobs/{digest}");
        ranged.Headers.Range = new RangeHeaderValue(100, 199);
        using var part = await _http.SendAsync(ranged);
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        Assert.Equal(data[100..200], await part.Content.ReadAsByteArrayAsync());
        using var suffix = new HttpRequestMessage(HttpMethod.Get, $"/v2/oci/app/blobs/{digest}");
        suffix.Headers.TryAddWithoutValidation("Range", "bytes=-300");
        using var tail = await _http.SendAsync(suffix);
        Assert.Equal(data[^300..], await tail.Content.ReadAsByteArrayAsync());

        using var mount = await _http.PostAsync($"/v2/oci/other/blobs/uploads/?mount={digest}&from=oci/app", null);
        Assert.Equal(HttpStatusCode.Created, mount.StatusCode);
        Assert.Equal(data, await _http.GetByteArrayAsync($"/v2/oci/other/blobs/{digest}"));
    }

    [Theory]
    [InlineData("no-such-tag")]
    [InlineData("-not-a-tag")]
    [InlineData("sha256:short")]
    [InlineData("sha512:1234567890abcdef")]
    public async Task A_manifest_that_is_not_there_is_404_whatever_its_reference_looks_like(string reference)
    {
        await _http.PushImageAsync("oci/refs", "v1", 30);
        foreach (var method in new[] { HttpMethod.Get, HttpMethod.Head })
        {
            using var response = await _http.SendAsync(new HttpRequestMessage(method, $"/v2/oci/refs/manifests/{reference}"));
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            if (method == HttpMethod.Get)
            {
                Assert.Equal("MANIFEST_UNKNOWN", await ErrorCode(response));
            }
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("&from=")]
    [InlineData("&from=Not_A_Namespace")]
    [InlineData("&from=oci/nothing-here")]
    public async Task A_mount_that_cannot_be_made_opens_an_upload_session_instead(string from)
    {
        var digest = await _http.PushBlobAsync("oci/source", Layers.Random(500, 31));
        using var mount = await _http.PostAsync($"/v2/oci/target/blobs/uploads/?mount={digest}{from}", null);
        Assert.Equal(HttpStatusCode.Accepted, mount.StatusCode);
        Assert.StartsWith("/v2/oci/target/blobs/uploads/", mount.Headers.Location!.OriginalString, StringComparison.Ordinal);
        using var absent = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/oci/target/blobs/{digest}"));
        Assert.Equal(HttpStatusCode.NotFound, absent.StatusCode);
    }

    [Fact]
    public async Task Deleting_a_tag_leaves_the_manifest_and_deleting_the_manifest_reclaims_its_blobs()
    {
        var (manifest, digest) = await _http.PushImageAsync("oci/del", "v1", 40);
        using (var other = await _http.PutManifestAsync("oci/del", "v2", manifest))
        {
            Assert.Equal(HttpStatusCode.Created, other.StatusCode);
        }

        using (var untag = await _http.DeleteAsync("/v2/oci/del/manifests/v1"))
        {
            Assert.Equal(HttpStatusCode.Accepted, untag.StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/oci/del/manifests/v1")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/v2/oci/del/manifests/v2")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.DeleteAsync("/v2/oci/del/manifests/v1")).StatusCode);

        using (var delete = await _http.DeleteAsync($"/v2/oci/del/manifests/{digest}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }

        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"/v2/oci/del/manifests/{digest}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/oci/del/manifests/v2")).StatusCode);

        // Nothing references the config and the layer now: the collector reclaims them after the grace period.
        var layer = JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        Assert.True(File.Exists(_server.BlobPath("oci/del", layer)));
        await _server.RunPeriodicWorkAsync("blob collection", 1, TimeSpan.FromHours(1));
        Assert.False(File.Exists(_server.BlobPath("oci/del", layer)));
        Assert.False(File.Exists(_server.BlobPath("oci/del", digest)));
    }

    [Fact]
    public async Task Deleting_a_blob_removes_it_and_the_manifests_that_need_it()
    {
        var (manifest, digest) = await _http.PushImageAsync("oci/blobdel", "v1", 41);
        var layer = JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        using (var delete = await _http.DeleteAsync($"/v2/oci/blobdel/blobs/{layer}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }

        using (var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/oci/blobdel/blobs/{layer}")))
        {
            Assert.Equal(HttpStatusCode.NotFound, head.StatusCode);
        }

        Assert.False(File.Exists(_server.BlobPath("oci/blobdel", layer)));
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/oci/blobdel/manifests/v1")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync($"/v2/oci/blobdel/manifests/{digest}")).StatusCode);
        using var again = await _http.DeleteAsync($"/v2/oci/blobdel/blobs/{layer}");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal("BLOB_UNKNOWN", await ErrorCode(again));
    }

    [Fact]
    public async Task Each_kind_of_delete_can_be_turned_off_and_then_answers_405()
    {
        await using var server = await TestServer.StartAsync(
            "--CacheService:Registry:AllowManifestDelete=false", "--CacheService:Registry:AllowTagDelete=false", "--CacheService:Registry:AllowBlobDelete=false");
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.HttpPort}") };
        var (manifest, digest) = await http.PushImageAsync("oci/keep", "v1", 42);
        var layer = JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        foreach (var path in new[] { $"/v2/oci/keep/manifests/{digest}", "/v2/oci/keep/manifests/v1", $"/v2/oci/keep/blobs/{layer}" })
        {
            using var refused = await http.DeleteAsync(path);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, refused.StatusCode);
            Assert.Equal("UNSUPPORTED", await ErrorCode(refused));
        }

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/v2/oci/keep/manifests/v1")).StatusCode);
    }

    [Fact]
    public async Task The_catalog_lists_repositories_in_order_a_page_at_a_time()
    {
        foreach (var repo in new[] { "cat/c", "cat/a", "cat/b" })
        {
            await _http.PushBlobAsync(repo, Layers.Random(100, repo.Length));
        }

        var all = await CatalogAsync("/v2/_catalog");
        Assert.Equal(["cat/a", "cat/b", "cat/c"], all.Where(r => r.StartsWith("cat/", StringComparison.Ordinal)));

        using var first = await _http.GetAsync("/v2/_catalog?n=1&last=cat/a");
        Assert.Equal(["cat/b"], Repositories(await first.Content.ReadAsStringAsync()));
        Assert.Equal("</v2/_catalog?n=1&last=cat%2Fb>; rel=\"next\"", first.Headers.GetValues("Link").Single());
        Assert.Equal(["cat/c"], (await CatalogAsync("/v2/_catalog?n=1&last=cat/b")).Where(r => r.StartsWith("cat/", StringComparison.Ordinal)));
    }

    private async Task<List<string>> CatalogAsync(string path) => Repositories(await _http.GetStringAsync(path));

    private static List<string> Repositories(string json) =>
        [.. JsonDocument.Parse(json).RootElement.GetProperty("repositories").EnumerateArray().Select(r => r.GetString()!)];

    [Fact]
    public async Task Manifests_round_trip_by_tag_and_digest_and_need_their_blobs()
    {
        var (manifest, digest) = await _http.PushImageAsync("oci/app", "v1", 5);
        using var byTag = await _http.GetAsync("/v2/oci/app/manifests/v1");
        Assert.Equal(manifest, await byTag.Content.ReadAsByteArrayAsync());
        Assert.Equal(OciImages.ManifestType, byTag.Content.Headers.ContentType!.MediaType);
        Assert.Equal(digest, byTag.Headers.GetValues("Docker-Content-Digest").Single());
        Assert.Equal(manifest, await _http.GetByteArrayAsync($"/v2/oci/app/manifests/{digest}"));

        var orphan = OciImages.Manifest(DigestOf([1, 2, 3]), 3);
        using var refused = await _http.PutManifestAsync("oci/app", "broken", orphan);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("MANIFEST_BLOB_UNKNOWN", await ErrorCode(refused));
        using var unknown = await _http.GetAsync("/v2/oci/app/manifests/broken");
        Assert.Equal("MANIFEST_UNKNOWN", await ErrorCode(unknown));
    }

    [Fact]
    public async Task A_manifest_get_by_tag_counts_as_a_lookup_in_stats_and_metrics()
    {
        await _http.PushImageAsync("oci/stats", "hit", 6);
        await _http.GetAsync("/v2/oci/stats/manifests/hit");
        await _http.GetAsync("/v2/oci/stats/manifests/hit");
        await _http.GetAsync("/v2/oci/stats/manifests/miss");
        var stats = await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "oci/stats" });
        Assert.Equal((3L, 2L), (stats.Lookups, stats.Hits));
        var metrics = await _http.GetStringAsync("/metrics");
        Assert.Contains("cacheservice_lookups_total{namespace=\"oci/stats\",result=\"hit\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("cacheservice_registry_requests_total{method=\"GET\",status=\"404\"} 1", metrics, StringComparison.Ordinal); // the miss
    }

    [Fact]
    public async Task Tags_list_in_order_page_by_page()
    {
        foreach (var tag in (string[])["c", "a", "b"])
        {
            await _http.PushImageAsync("oci/tags", tag, tag[0]);
        }

        using var page = await _http.GetAsync("/v2/oci/tags/tags/list?n=2");
        var body = JsonDocument.Parse(await page.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(["a", "b"], body.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
        Assert.Contains("last=b", page.Headers.GetValues("Link").Single(), StringComparison.Ordinal);
        var rest = JsonDocument.Parse(await _http.GetStringAsync("/v2/oci/tags/tags/list?n=2&last=b")).RootElement;
        Assert.Equal(["c"], rest.GetProperty("tags").EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task Under_a_small_budget_old_tags_are_evicted_with_their_blobs()
    {
        var first = await _http.PushImageAsync("oci/small", "old", 7, layerBytes: 2000);
        await _http.PushImageAsync("oci/small", "new", 8, layerBytes: 2000);
        await _http.PushImageAsync("oci/small", "newest", 9, layerBytes: 2000);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/oci/small/manifests/old")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/v2/oci/small/manifests/newest")).StatusCode);

        var layer = JsonDocument.Parse(first.Manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString();
        _server.Time.Advance(TimeSpan.FromDays(1)); // past the grace period, at the collector's next round
        var gone = false;
        for (var attempt = 0; attempt < 100 && !gone; attempt++)
        {
            using var head = new HttpRequestMessage(HttpMethod.Head, $"/v2/oci/small/blobs/{layer}");
            gone = (await _http.SendAsync(head)).StatusCode == HttpStatusCode.NotFound;
            await Task.Delay(50);
        }

        Assert.True(gone, "the evicted image's layer blob was not reclaimed");
    }
}
