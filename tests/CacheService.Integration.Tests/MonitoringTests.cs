using System.Globalization;
using System.Text.Json;
using CacheService.Api.V1;
using CacheService.Testing;

namespace CacheService.Integration.Tests;

/// <summary>
/// What ops see, through the real tools: a real Prometheus scraping the server, and the status
/// page rendered by headless Chromium (its screenshot is kept under test-artifacts/).
/// </summary>
public sealed class MonitoringTests : IDisposable
{
    private readonly HttpClient _http = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("cs-monitoring-").FullName;

    public void Dispose()
    {
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    // 3 hits out of 4 lookups in "monitored/main".
    private static async Task ThreeHitsOfFourAsync(TestServer server)
    {
        await Layers.UploadAndCommitAsync(server.Client, "monitored/main", "k", Layers.Random(2000, 1));
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await server.Client.LookupAsync(new LookupRequest { Namespace = "monitored/main", Key = Layers.Key("k") })).Hit);
        }

        Assert.False((await server.Client.LookupAsync(new LookupRequest { Namespace = "monitored/main", Key = Layers.Key("other") })).Hit);
    }

    [Fact]
    public async Task A_real_Prometheus_reads_back_the_hit_ratio_of_a_known_sequence()
    {
        await using var server = await TestServer.StartAsync();
        var port = ServiceScripts.FreePort();
        ServiceScripts.Run("prometheus.sh", "start", _dir, port.ToString(CultureInfo.InvariantCulture), $"127.0.0.1:{server.HttpPort}");
        try
        {
            await ThreeHitsOfFourAsync(server);
            const string query = """sum(cacheservice_lookups_total{namespace="monitored/main",result="hit"}) / sum(cacheservice_lookups_total{namespace="monitored/main"})""";
            var url = $"http://127.0.0.1:{port}/api/v1/query?query={Uri.EscapeDataString(query)}";

            // Prometheus scrapes every second; wait (bounded) until a scrape after the sequence is in.
            string? value = null;
            for (var attempt = 0; attempt < 120 && value != "0.75"; attempt++)
            {
                await Task.Delay(250);
                var result = JsonDocument.Parse(await _http.GetStringAsync(url)).RootElement.GetProperty("data").GetProperty("result");
                value = result.GetArrayLength() == 1 ? result[0].GetProperty("value")[1].GetString() : null;
            }

            Assert.Equal("0.75", value);

            // Every query of the Grafana dashboard the chart ships is valid PromQL that finds data.
            var dashboard = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(ServiceScripts.RepositoryRoot, "helm", "cacheservice", "dashboards", "cacheservice.json")));
            foreach (var target in dashboard.RootElement.GetProperty("panels").EnumerateArray().SelectMany(p => p.GetProperty("targets").EnumerateArray()))
            {
                var expr = target.GetProperty("expr").GetString()!.Replace("$__rate_interval", "1m", StringComparison.Ordinal);
                using var response = await _http.GetAsync($"http://127.0.0.1:{port}/api/v1/query?query={Uri.EscapeDataString(expr)}");
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.IsSuccessStatusCode, $"{expr}: {body}");
                Assert.Equal("success", JsonDocument.Parse(body).RootElement.GetProperty("status").GetString());
            }
        }
        finally
        {
            ServiceScripts.Run("prometheus.sh", "stop", _dir);
        }
    }

    // Moves the clock one sampling interval and waits (bounded) for the sampler to record it.
    private async Task NextSampleAsync(TestServer server, string url, int samples)
    {
        server.Time.Advance(TimeSpan.FromSeconds(10));
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var status = JsonDocument.Parse(await _http.GetStringAsync(url + "api/status")).RootElement.GetProperty("namespaces");
            if (status.EnumerateArray().FirstOrDefault(n => n.GetProperty("namespace").GetString() == "monitored/main") is { ValueKind: JsonValueKind.Object } monitored
                && monitored.GetProperty("history").GetArrayLength() == samples)
            {
                return;
            }

            await Task.Delay(50);
        }

        throw new Xunit.Sdk.XunitException($"the status never showed {samples} samples");
    }

    [Fact]
    public async Task Headless_Chromium_renders_the_status_page_chart_with_the_hit_ratio()
    {
        await using var server = await TestServer.StartAsync();
        var url = $"http://127.0.0.1:{server.HttpPort}/";
        await Layers.UploadAndCommitAsync(server.Client, "quiet/main", "k", Layers.Random(100, 7)); // stored, never looked up
        await ThreeHitsOfFourAsync(server);
        await NextSampleAsync(server, url, samples: 1); // 0.75 in the first interval
        await server.Client.LookupAsync(new LookupRequest { Namespace = "monitored/main", Key = Layers.Key("k") });
        await server.Client.LookupAsync(new LookupRequest { Namespace = "monitored/main", Key = Layers.Key("other") });
        await NextSampleAsync(server, url, samples: 2); // 0.5 in the second

        string[] browser = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--user-data-dir={_dir}/profile", "--virtual-time-budget=10000"];
        var (exit, dom, error) = await Tools.RunAsync("chromium", "chromium", null, [.. browser, "--dump-dom", url]);
        Assert.True(exit == 0, error);
        Assert.Contains("<g data-namespace=\"monitored/main\">", dom, StringComparison.Ordinal);
        Assert.Contains("data-ratio=\"0.75\"", dom, StringComparison.Ordinal);
        Assert.Contains("data-ratio=\"0.5\"", dom, StringComparison.Ordinal);
        Assert.Contains("<polyline", dom, StringComparison.Ordinal);
        Assert.Contains("<td>66.7%</td>", dom, StringComparison.Ordinal); // 4 hits of 6 lookups in all
        Assert.Contains("<td>–</td>", dom, StringComparison.Ordinal); // no lookups: no ratio, not 0.0%

        var artifacts = Directory.CreateDirectory(Path.Combine(ServiceScripts.RepositoryRoot, "test-artifacts")).FullName;
        var screenshot = Path.Combine(artifacts, "status-page.png");
        File.Delete(screenshot);
        (exit, _, error) = await Tools.RunAsync("chromium", "chromium", null, [.. browser, "--window-size=960,720", $"--screenshot={screenshot}", url]);
        Assert.True(exit == 0, error);
        var png = await File.ReadAllBytesAsync(screenshot);
        Assert.True(png.Length > 10_000, $"a screenshot of {png.Length} bytes is too small to show the page");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
    }
}
