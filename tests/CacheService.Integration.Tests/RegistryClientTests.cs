using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Testing;

namespace CacheService.Integration.Tests;

/// <summary>
/// Real registry clients against the OCI Distribution facade, unchanged: Debian's buildah caches
/// a Dockerfile's steps with <c>--cache-to</c> and reuses them from a fresh storage root with
/// <c>--cache-from</c>; skopeo copies an image in and out with identical digests.
/// </summary>
public sealed class RegistryClientTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-registry-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Task<string> BuildahAsync(string builder, string registry, string cacheFlag, string context) =>
        Tools.BuildahBudAsync(_dir, builder, registry, cacheFlag, context);

    // The "--> Cache pulled from remote" lines buildah prints, by step number.
    private static List<int> StepsFromRemote(string output)
    {
        var steps = new List<int>();
        var step = 0;
        foreach (var line in output.Split('\n'))
        {
            if (line.StartsWith("STEP ", StringComparison.Ordinal))
            {
                step = int.Parse(line[5..line.IndexOf('/', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
            }
            else if (line.Contains("Cache pulled from remote", StringComparison.Ordinal))
            {
                steps.Add(step);
            }
        }

        return steps;
    }

    [Fact]
    public async Task Buildah_reuses_every_cached_step_from_a_fresh_root_and_rebuilds_from_the_changed_copy()
    {
        await using var server = await TestServer.StartAsync();
        var registry = $"127.0.0.1:{server.HttpPort}";
        var context = Directory.CreateDirectory(Path.Combine(_dir, "context")).FullName;
        File.Copy("/bin/busybox", Path.Combine(context, "busybox"));
        await File.WriteAllTextAsync(Path.Combine(context, "app.txt"), "version 1\n");
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), """
            FROM scratch
            COPY busybox /bin/busybox
            RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]
            RUN echo built > /built.txt
            COPY app.txt /app/app.txt
            RUN wc -c /app/app.txt > /app/size.txt
            """);

        var a = await BuildahAsync("a", registry, "--cache-to", context);
        Assert.Equal(5, a.Split('\n').Count(l => l.Contains("Pushing cache", StringComparison.Ordinal)));

        var b = await BuildahAsync("b", registry, "--cache-from", context);
        Assert.Equal([2, 3, 4, 5, 6], StepsFromRemote(b));

        await File.WriteAllTextAsync(Path.Combine(context, "app.txt"), "version 2\n");
        var c = await BuildahAsync("c", registry, "--cache-from", context);
        Assert.Equal([2, 3, 4], StepsFromRemote(c)); // from COPY app.txt on, rebuilt

        var stats = await server.Client.GetStatsAsync(new GetStatsRequest { Namespace = "team/cache" });
        Assert.True(stats.Hits >= 8, $"the facade counted {stats.Hits} hits of {stats.Lookups} lookups");
    }

    [Fact]
    public async Task Skopeo_copies_an_image_in_and_out_with_identical_digests()
    {
        await using var server = await TestServer.StartAsync();
        var source = Path.Combine(_dir, "source");
        var manifestDigest = await WriteOciLayoutAsync(source, "v1");
        var target = $"docker://127.0.0.1:{server.HttpPort}/team/images:v1";

        var (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "copy", "--dest-tls-verify=false", $"oci:{source}:v1", target);
        Assert.True(exit == 0, output + error);
        (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "copy", "--src-tls-verify=false", target, $"oci:{Path.Combine(_dir, "copy")}:v1");
        Assert.True(exit == 0, output + error);

        var copied = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "copy", "index.json"))).RootElement.GetProperty("manifests")[0].GetProperty("digest").GetString();
        Assert.Equal(manifestDigest, copied);
        (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "inspect", "--tls-verify=false", "--raw", target);
        Assert.True(exit == 0, error);
        Assert.Equal(manifestDigest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(output))));

        // skopeo delete resolves the tag and deletes the manifest by digest; the image is gone.
        (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "delete", "--tls-verify=false", target);
        Assert.True(exit == 0, output + error);
        (exit, _, error) = await Tools.RunAsync("skopeo", "skopeo", null, "inspect", "--tls-verify=false", "--raw", target);
        Assert.True(exit != 0, "the deleted image is still there");
        Assert.Contains("manifest unknown", error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Podman_pushes_an_image_to_the_facade_and_pulls_it_back_on_a_fresh_root()
    {
        await using var server = await TestServer.StartAsync();
        var registry = $"127.0.0.1:{server.HttpPort}";
        // podman names an image pulled from a layout after its path, and names must be lower case.
        var source = Path.Combine(Path.GetTempPath(), "cs-podman-" + Guid.NewGuid().ToString("N"));
        using var removeSource = new DirectoryRemoval(source);
        await WriteOciLayoutAsync(source, "v1");
        string[] Storage(string name) => ["--root", Path.Combine(_dir, name, "root"), "--runroot", Path.Combine(_dir, name, "run"), "--storage-driver", "vfs"];

        var (exit, output, error) = await Tools.RunAsync("podman", "podman", null, [.. Storage("a"), "pull", $"oci:{source}:v1"]);
        Assert.True(exit == 0, output + error);
        var image = output.Trim().Split('\n')[^1];
        (exit, output, error) = await Tools.RunAsync("podman", "podman", null, [.. Storage("a"), "push", "--tls-verify=false", image, $"docker://{registry}/team/podman:v1"]);
        Assert.True(exit == 0, output + error);

        (exit, output, error) = await Tools.RunAsync("podman", "podman", null, [.. Storage("b"), "pull", "--tls-verify=false", $"{registry}/team/podman:v1"]);
        Assert.True(exit == 0, output + error);
        (exit, output, error) = await Tools.RunAsync("podman", "podman", null, [.. Storage("b"), "image", "inspect", "--format", "{{.Digest}}", $"{registry}/team/podman:v1"]);
        Assert.True(exit == 0, output + error);
        using var http = new HttpClient();
        using var manifest = await http.GetAsync($"http://{registry}/v2/team/podman/manifests/v1");
        Assert.Equal(manifest.Headers.GetValues("Docker-Content-Digest").Single(), output.Trim()); // what podman pulled is what the facade holds
    }

    [Fact]
    public async Task Skopeo_podman_and_buildah_log_in_with_a_tokens_secret_unchanged_and_are_refused_without_it()
    {
        using var tokens = new TestTokens(("ci", ["write:team/*"]), ("laptop", ["read:team/*"]));
        await using var server = await TestServer.StartAsync(tokens.ServerArgs);
        var registry = $"127.0.0.1:{server.HttpPort}";
        var source = Path.Combine(_dir, "source");
        var manifestDigest = await WriteOciLayoutAsync(source, "v1");
        var target = $"docker://{registry}/team/images:v1";

        var (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "copy", "--dest-tls-verify=false", $"oci:{source}:v1", target);
        Assert.True(exit != 0, "an anonymous push was accepted:\n" + output);
        Assert.Contains("unauthorized", error, StringComparison.OrdinalIgnoreCase);

        (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "copy", "--dest-tls-verify=false", "--dest-creds", "ci:" + tokens["ci"], $"oci:{source}:v1", target);
        Assert.True(exit == 0, output + error);

        // A reader's login (podman login keeps it in an auth file) pulls, and cannot push.
        var authFile = Path.Combine(_dir, "auth.json");
        (exit, output, error) = await Tools.RunAsync("podman", "podman", null, "login", "--tls-verify=false", "--authfile", authFile, "-u", "laptop", "-p", tokens["laptop"], registry);
        Assert.True(exit == 0, output + error);
        (exit, output, error) = await Tools.RunAsync("skopeo", "skopeo", null, "inspect", "--tls-verify=false", "--authfile", authFile, "--raw", target);
        Assert.True(exit == 0, error);
        Assert.Equal(manifestDigest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(output))));
        (exit, _, error) = await Tools.RunAsync("skopeo", "skopeo", null, "copy", "--dest-tls-verify=false", "--authfile", authFile, $"oci:{source}:v1", $"docker://{registry}/team/images:v2");
        Assert.True(exit != 0, "a reader pushed");
        Assert.Contains("denied", error, StringComparison.OrdinalIgnoreCase);

        // A wrong secret does not log in.
        (exit, _, _) = await Tools.RunAsync("podman", "podman", null, "login", "--tls-verify=false", "--authfile", Path.Combine(_dir, "wrong.json"), "-u", "laptop", "-p", "lcs_wrong", registry);
        Assert.NotEqual(0, exit);

        // buildah caches its steps with the writer's secret.
        var context = Directory.CreateDirectory(Path.Combine(_dir, "context")).FullName;
        File.Copy("/bin/busybox", Path.Combine(context, "busybox"));
        await File.WriteAllTextAsync(Path.Combine(context, "Dockerfile"), "FROM scratch\nCOPY busybox /bin/busybox\n");
        string[] bud =
        [
            "--root", Path.Combine(_dir, "b", "root"), "--runroot", Path.Combine(_dir, "b", "run"), "--storage-driver", "vfs",
            "bud", "--isolation", "chroot", "--layers", "--cache-to", $"{registry}/team/cache", "--tls-verify=false", "--creds", "ci:" + tokens["ci"], context,
        ];
        string[] anonymous = [.. bud.Where(a => a != "--creds" && a != "ci:" + tokens["ci"])];
        anonymous[Array.IndexOf(anonymous, "--root") + 1] = Path.Combine(_dir, "anonymous", "root");
        anonymous[Array.IndexOf(anonymous, "--runroot") + 1] = Path.Combine(_dir, "anonymous", "run");
        (exit, output, error) = await Tools.RunAsync("buildah", "buildah", null, anonymous);
        Assert.True(exit != 0, "an anonymous buildah pushed its cache:\n" + output);
        Assert.Contains("failed pushing cache", error, StringComparison.Ordinal);
        Assert.Contains("unauthorized", error, StringComparison.Ordinal);
        (exit, output, error) = await Tools.RunAsync("buildah", "buildah", null, bud);
        Assert.True(exit == 0, output + error);
        Assert.Contains("Pushing cache", output + error, StringComparison.Ordinal);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("ci:" + tokens["ci"])));
        var tags = JsonDocument.Parse(await http.GetStringAsync($"http://{registry}/v2/team/cache/tags/list")).RootElement.GetProperty("tags");
        Assert.True(tags.GetArrayLength() > 0);
    }

    // A one-layer OCI image layout; returns its manifest digest.
    private static async Task<string> WriteOciLayoutAsync(string root, string tag)
    {
        var blobs = Directory.CreateDirectory(Path.Combine(root, "blobs", "sha256")).FullName;
        async Task<(string Digest, int Size)> Put(byte[] data)
        {
            var hex = Convert.ToHexStringLower(SHA256.HashData(data));
            await File.WriteAllBytesAsync(Path.Combine(blobs, hex), data);
            return ("sha256:" + hex, data.Length);
        }

        using var tar = new MemoryStream();
        using (var writer = new TarWriter(tar, TarEntryFormat.Pax, leaveOpen: true))
        {
            await writer.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "hello.txt") { DataStream = new MemoryStream("hello from the facade\n"u8.ToArray()) });
        }

        using var gz = new MemoryStream();
        await using (var zip = new GZipStream(gz, CompressionLevel.Fastest, leaveOpen: true))
        {
            await zip.WriteAsync(tar.ToArray());
        }

        var layer = await Put(gz.ToArray());
        var config = await Put(JsonSerializer.SerializeToUtf8Bytes(new
        {
            architecture = "amd64",
            os = "linux",
            rootfs = new { type = "layers", diff_ids = new[] { "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar.ToArray())) } },
        }));
        var manifest = await Put(JsonSerializer.SerializeToUtf8Bytes(new
        {
            schemaVersion = 2,
            mediaType = "application/vnd.oci.image.manifest.v1+json",
            config = new { mediaType = "application/vnd.oci.image.config.v1+json", digest = config.Digest, size = config.Size },
            layers = new[] { new { mediaType = "application/vnd.oci.image.layer.v1.tar+gzip", digest = layer.Digest, size = layer.Size } },
        }));
        await File.WriteAllTextAsync(Path.Combine(root, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        await File.WriteAllTextAsync(Path.Combine(root, "index.json"), JsonSerializer.Serialize(new
        {
            schemaVersion = 2,
            manifests = new[]
            {
                new { mediaType = "application/vnd.oci.image.manifest.v1+json", digest = manifest.Digest, size = manifest.Size, annotations = new Dictionary<string, string> { ["org.opencontainers.image.ref.name"] = tag } },
            },
        }));
        return manifest.Digest;
    }

    private sealed class DirectoryRemoval(string path) : IDisposable
    {
        public void Dispose()
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
    }
}
