using System.Net;
using System.Text.Json;
using CacheService.Testing;

namespace CacheService.Server.Tests;

/// <summary>
/// The distribution-spec v1.1 endpoint table walked over HTTP, the status codes, headers and error
/// bodies each endpoint owes its client, for what the other registry tests do not already pin.
/// </summary>
public sealed class RegistrySpecTests : IAsyncLifetime, IDisposable
{
    private readonly HttpClient _http = new();
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _http.BaseAddress = new Uri($"http://127.0.0.1:{_server.HttpPort}");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => _http.Dispose();

    private static async Task AssertError(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("errors")[0];
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task An_upload_session_answers_each_step_as_end_4a_5_6_and_13_say()
    {
        // end-4a: POST opens a session: 202, its Location, its id, nothing received yet.
        using var start = await _http.PostAsync("/v2/spec/up/blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location!.OriginalString;
        Assert.StartsWith("/v2/spec/up/blobs/uploads/", location, StringComparison.Ordinal);
        Assert.Equal(location[(location.LastIndexOf('/') + 1)..], start.Headers.GetValues("Docker-Upload-UUID").Single());
        Assert.Equal("0-0", start.Headers.NonValidated["Range"].ToString());

        // end-5 then end-13: a chunk moves the range; the status says where it is, with no body.
        var data = Layers.Random(1000, 1);
        using (var patch = await _http.PatchAsync(location, new ByteArrayContent(data)))
        {
            Assert.Equal(HttpStatusCode.Accepted, patch.StatusCode);
            Assert.Equal(location, patch.Headers.Location!.OriginalString);
            Assert.Equal("0-999", patch.Headers.NonValidated["Range"].ToString());
        }

        using (var status = await _http.GetAsync(location))
        {
            Assert.Equal(HttpStatusCode.NoContent, status.StatusCode);
            Assert.Equal("0-999", status.Headers.NonValidated["Range"].ToString());
        }

        // end-6 without a digest is refused and keeps nothing; a cancelled session is gone (DELETE, then 404).
        using (var noDigest = await _http.PutAsync(location, null))
        {
            await AssertError(noDigest, HttpStatusCode.BadRequest, "DIGEST_INVALID");
        }

        using var again = await _http.PostAsync("/v2/spec/up/blobs/uploads/", null);
        var second = again.Headers.Location!.OriginalString;
        using (var cancel = await _http.DeleteAsync(second))
        {
            Assert.Equal(HttpStatusCode.NoContent, cancel.StatusCode);
        }

        await AssertError(await _http.GetAsync(second), HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
        await AssertError(await _http.PatchAsync(second, new ByteArrayContent(data)), HttpStatusCode.NotFound, "BLOB_UPLOAD_UNKNOWN");
    }

    [Fact]
    public async Task Blob_and_manifest_heads_describe_without_a_body_as_end_2_and_3_say()
    {
        var (manifest, digest) = await _http.PushImageAsync("spec/head", "v1", seed: 2, layerBytes: 4321);
        var layer = JsonDocument.Parse(manifest).RootElement.GetProperty("layers")[0].GetProperty("digest").GetString()!;

        using (var blob = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/spec/head/blobs/{layer}")))
        {
            Assert.Equal(HttpStatusCode.OK, blob.StatusCode);
            Assert.Equal(4321, blob.Content.Headers.ContentLength);
            Assert.Equal(layer, blob.Headers.GetValues("Docker-Content-Digest").Single());
            Assert.Empty(await blob.Content.ReadAsByteArrayAsync());
        }

        foreach (var reference in new[] { "v1", digest })
        {
            using var head = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/spec/head/manifests/{reference}"));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Equal(manifest.Length, head.Content.Headers.ContentLength);
            Assert.Equal(OciImages.ManifestType, head.Content.Headers.ContentType!.MediaType);
            Assert.Equal(digest, head.Headers.GetValues("Docker-Content-Digest").Single());
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }

        using var missing = await _http.SendAsync(new HttpRequestMessage(HttpMethod.Head, $"/v2/spec/head/blobs/{Layers.DigestOf([7])}"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        await AssertError(await _http.GetAsync($"/v2/spec/head/blobs/{Layers.DigestOf([7])}"), HttpStatusCode.NotFound, "BLOB_UNKNOWN");
    }

    [Fact]
    public async Task A_manifest_push_answers_201_with_where_it_lives_and_refuses_what_it_cannot_keep_as_end_7_says()
    {
        var (manifest, digest) = await _http.PushImageAsync("spec/put", "v1", seed: 3);
        using (var byDigest = await _http.PutManifestAsync("spec/put", digest, manifest))
        {
            Assert.Equal(HttpStatusCode.Created, byDigest.StatusCode);
            Assert.Equal($"/v2/spec/put/manifests/{digest}", byDigest.Headers.Location!.OriginalString);
            Assert.Equal(digest, byDigest.Headers.GetValues("Docker-Content-Digest").Single());
        }

        await AssertError(await _http.PutManifestAsync("spec/put", Layers.DigestOf([1]), manifest), HttpStatusCode.BadRequest, "MANIFEST_INVALID");
        await AssertError(await _http.PutManifestAsync("spec/put", "v2", "{not json"u8.ToArray()), HttpStatusCode.BadRequest, "MANIFEST_INVALID");
        await AssertError(await _http.PutManifestAsync("spec/put", "-bad-tag", manifest), HttpStatusCode.BadRequest, "MANIFEST_INVALID");
        var huge = new ByteArrayContent(new byte[(4 << 20) + 1]);
        huge.Headers.ContentType = new(OciImages.ManifestType);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await _http.PutAsync("/v2/spec/put/manifests/v3", huge)).StatusCode);
        await AssertError(await _http.GetAsync("/v2/Not_A_Name/tags/list"), HttpStatusCode.BadRequest, "NAME_INVALID");
    }
}
