using System.Net;
using System.Text;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Testing;

namespace CacheService.Server.Tests;

/// <summary>The referrers API of distribution-spec v1.1 (signatures, SBOMs and attestations attached to an image), over HTTP.</summary>
public sealed class RegistryReferrersTests : IAsyncLifetime, IDisposable
{
    private const string IndexType = "application/vnd.oci.image.index.v1+json";
    private const string SignatureType = "application/vnd.example.signature.v1";
    private const string SbomType = "application/vnd.example.sbom.v1+json";

    private readonly HttpClient _http = new();
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _http.BaseAddress = new Uri($"http://127.0.0.1:{_server.HttpPort}");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _http.Dispose();

    // An artifact manifest referring to subject: with an artifactType field, or (artifactType null)
    // typed by its config's media type, as OCI 1.1 says a registry must read it then.
    private async Task<(byte[] Manifest, string Digest)> PushArtifactAsync(
        string repo, string subject, int subjectSize, string? artifactType, string configType, string note, string? reference = null)
    {
        var payload = Encoding.UTF8.GetBytes(note);
        var config = "{}"u8.ToArray();
        var manifest = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?>
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = OciImages.ManifestType,
            ["artifactType"] = artifactType,
            ["config"] = new { mediaType = configType, digest = await _http.PushBlobAsync(repo, config), size = config.Length },
            ["layers"] = new[] { new { mediaType = "application/octet-stream", digest = await _http.PushBlobAsync(repo, payload), size = payload.Length } },
            ["subject"] = new { mediaType = OciImages.ManifestType, digest = subject, size = subjectSize },
            ["annotations"] = new Dictionary<string, string> { ["org.example.note"] = note },
        }.Where(p => p.Value is not null).ToDictionary());
        var digest = Layers.DigestOf(manifest);
        using var push = await _http.PutManifestAsync(repo, reference ?? digest, manifest);
        Assert.Equal(HttpStatusCode.Created, push.StatusCode);
        Assert.Equal(subject, push.Headers.GetValues("OCI-Subject").Single());
        return (manifest, digest);
    }

    private async Task<(JsonElement Index, HttpResponseMessage Response)> ReferrersAsync(string repo, string subject, string query = "")
    {
        var response = await _http.GetAsync($"/v2/{repo}/referrers/{subject}{query}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(IndexType, response.Content.Headers.ContentType!.MediaType);
        var index = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(2, index.GetProperty("schemaVersion").GetInt32());
        Assert.Equal(IndexType, index.GetProperty("mediaType").GetString());
        return (index, response);
    }

    private static List<string> Digests(JsonElement index) =>
        [.. index.GetProperty("manifests").EnumerateArray().Select(m => m.GetProperty("digest").GetString()!)];

    [Fact]
    public async Task Referrers_are_listed_with_their_descriptors_and_filtered_by_artifact_type()
    {
        var (image, subject) = await _http.PushImageAsync("ref/app", "v1", 1);
        var signature = await PushArtifactAsync("ref/app", subject, image.Length, SignatureType, "application/vnd.oci.empty.v1+json", "signed");
        var sbom = await PushArtifactAsync("ref/app", subject, image.Length, null, SbomType, "sbom");

        var (all, plain) = await ReferrersAsync("ref/app", subject);
        Assert.False(plain.Headers.Contains("OCI-Filters-Applied"));
        var listed = all.GetProperty("manifests").EnumerateArray().ToDictionary(m => m.GetProperty("digest").GetString()!);
        Assert.Equal(new[] { signature.Digest, sbom.Digest }.Order(StringComparer.Ordinal), listed.Keys.Order(StringComparer.Ordinal));
        foreach (var (manifest, digest, type, note) in new[] { (signature.Manifest, signature.Digest, SignatureType, "signed"), (sbom.Manifest, sbom.Digest, SbomType, "sbom") })
        {
            var descriptor = listed[digest];
            Assert.Equal(OciImages.ManifestType, descriptor.GetProperty("mediaType").GetString());
            Assert.Equal(manifest.Length, descriptor.GetProperty("size").GetInt64());
            Assert.Equal(type, descriptor.GetProperty("artifactType").GetString());
            Assert.Equal(note, descriptor.GetProperty("annotations").GetProperty("org.example.note").GetString());
        }

        // Listing reads the referrers' manifests for the server, not for a client: no download is counted.
        var downloaded = (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "ref/app" })).BytesDownloaded;
        (await ReferrersAsync("ref/app", subject)).Response.Dispose();
        Assert.Equal(downloaded, (await _server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "ref/app" })).BytesDownloaded);

        var (filtered, response) = await ReferrersAsync("ref/app", subject, $"?artifactType={Uri.EscapeDataString(SbomType)}");
        Assert.Equal("artifactType", response.Headers.GetValues("OCI-Filters-Applied").Single());
        Assert.Equal([sbom.Digest], Digests(filtered));

        // The links are not tags: the tag list shows only what clients tagged.
        var tags = JsonDocument.Parse(await _http.GetStringAsync("/v2/ref/app/tags/list")).RootElement.GetProperty("tags");
        Assert.Equal(["v1"], tags.EnumerateArray().Select(t => t.GetString()));
    }

    [Fact]
    public async Task A_subject_nobody_refers_to_has_an_empty_list_and_a_bad_digest_is_400()
    {
        var (_, subject) = await _http.PushImageAsync("ref/empty", "v1", 2);
        var (index, _) = await ReferrersAsync("ref/empty", subject);
        Assert.Empty(Digests(index));
        var (unknown, _) = await ReferrersAsync("ref/nowhere", Layers.DigestOf([9]));
        Assert.Empty(Digests(unknown));

        using var bad = await _http.GetAsync("/v2/ref/empty/referrers/sha256:not-hex");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Equal("DIGEST_INVALID", JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")[0].GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_referrer_may_arrive_before_its_subject_and_one_subject_does_not_see_anothers()
    {
        var absent = Layers.DigestOf("not pushed yet"u8.ToArray());
        var early = await PushArtifactAsync("ref/early", absent, 100, SignatureType, "application/vnd.oci.empty.v1+json", "early", reference: "sig");
        var (image, other) = await _http.PushImageAsync("ref/early", "v1", 3);
        var late = await PushArtifactAsync("ref/early", other, image.Length, SignatureType, "application/vnd.oci.empty.v1+json", "late");

        Assert.Equal([early.Digest], Digests((await ReferrersAsync("ref/early", absent)).Index));
        Assert.Equal([late.Digest], Digests((await ReferrersAsync("ref/early", other)).Index));
        Assert.Empty(Digests((await ReferrersAsync("ref/other-repo", other)).Index));
    }

    [Fact]
    public async Task Deleting_a_referrer_takes_it_off_the_list_and_reclaims_its_blobs()
    {
        var (image, subject) = await _http.PushImageAsync("ref/del", "v1", 4);
        var gone = await PushArtifactAsync("ref/del", subject, image.Length, SignatureType, "application/vnd.oci.empty.v1+json", "to delete");
        var kept = await PushArtifactAsync("ref/del", subject, image.Length, SignatureType, "application/vnd.oci.empty.v1+json", "to keep");
        using (var delete = await _http.DeleteAsync($"/v2/ref/del/manifests/{gone.Digest}"))
        {
            Assert.Equal(HttpStatusCode.Accepted, delete.StatusCode);
        }

        Assert.Equal([kept.Digest], Digests((await ReferrersAsync("ref/del", subject)).Index));
        var payload = JsonDocument.Parse(gone.Manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;
        await _server.RunPeriodicWorkAsync("blob collection", 1, TimeSpan.FromHours(1));
        Assert.False(File.Exists(_server.BlobPath("ref/del", payload)));
        Assert.False(File.Exists(_server.BlobPath("ref/del", gone.Digest)));
        Assert.True(File.Exists(_server.BlobPath("ref/del", kept.Digest)));
    }

    [Fact]
    public async Task The_fallback_tag_schema_works_for_clients_that_use_it()
    {
        // A client that does not trust the referrers API keeps an index under the tag sha256-<hex> of the subject.
        var (image, subject) = await _http.PushImageAsync("ref/fallback", "v1", 5);
        var artifact = await PushArtifactAsync("ref/fallback", subject, image.Length, SignatureType, "application/vnd.oci.empty.v1+json", "fallback");
        var index = JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = IndexType,
            manifests = new[] { new { mediaType = OciImages.ManifestType, digest = artifact.Digest, size = artifact.Manifest.Length, artifactType = SignatureType } },
        });
        var tag = subject.Replace(':', '-');
        var content = new ByteArrayContent(index);
        content.Headers.ContentType = new(IndexType);
        using (var push = await _http.PutAsync($"/v2/ref/fallback/manifests/{tag}", content))
        {
            Assert.Equal(HttpStatusCode.Created, push.StatusCode);
            Assert.False(push.Headers.Contains("OCI-Subject")); // the index itself has no subject
        }

        using var pulled = await _http.GetAsync($"/v2/ref/fallback/manifests/{tag}");
        Assert.Equal(index, await pulled.Content.ReadAsByteArrayAsync());
        Assert.Equal(IndexType, pulled.Content.Headers.ContentType!.MediaType);
        var tags = JsonDocument.Parse(await _http.GetStringAsync("/v2/ref/fallback/tags/list")).RootElement.GetProperty("tags");
        Assert.Equal([tag, "v1"], tags.EnumerateArray().Select(t => t.GetString()));
    }
}
