using System.Diagnostics;

namespace CacheService.Testing;

/// <summary>
/// Runs a real command-line tool the tests check against (promtool, chromium). A tool that is
/// not installed fails the test with the package to install; it is never skipped.
/// </summary>
public static class Tools
{
    /// <summary>Runs <paramref name="tool"/> with <paramref name="stdin"/> as its input; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string tool, string package, string? stdin, params string[] args)
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{tool} is not installed (make test installs it: apt-get install {package})");
        var start = new ProcessStartInfo(path) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    /// <summary>
    /// <c>buildah bud --layers</c> of <paramref name="context"/> as <paramref name="builder"/> (a vfs
    /// storage root of its own under <paramref name="directory"/>), with <paramref name="cacheFlag"/>
    /// (<c>--cache-to</c> or <c>--cache-from</c>) naming <c>team/cache</c> on <paramref name="registry"/>;
    /// fails the test when buildah does, and returns all it printed.
    /// </summary>
    public static async Task<string> BuildahBudAsync(string directory, string builder, string registry, string cacheFlag, string context)
    {
        string[] args =
        [
            "--root", Path.Combine(directory, builder, "root"), "--runroot", Path.Combine(directory, builder, "run"), "--storage-driver", "vfs",
            "bud", "--isolation", "chroot", "--layers", cacheFlag, $"{registry}/team/cache", "--tls-verify=false", "-t", builder, context,
        ];
        var (exit, output, error) = await RunAsync("buildah", "buildah", null, args);
        Xunit.Assert.True(exit == 0, $"buildah {string.Join(' ', args)} failed:\n{output}\n{error}");
        return output + error;
    }
}
