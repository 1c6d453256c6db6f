using System.Diagnostics;

namespace CacheService.Build;

/// <summary>Where buildah keeps its images, as its global options say it.</summary>
/// <param name="Root">--root: the storage root; null for buildah's default.</param>
/// <param name="RunRoot">--runroot: the state directory; null for buildah's default.</param>
/// <param name="StorageDriver">--storage-driver, e.g. vfs; null for buildah's default.</param>
/// <param name="TlsVerify">False to pull base images from registries over plain HTTP or with unverified TLS.</param>
public sealed record BuildahStorage(string? Root = null, string? RunRoot = null, string? StorageDriver = null, bool TlsVerify = true);

/// <summary>A buildah command that failed: its exit code and the last lines it printed.</summary>
public class BuildahException(string message, int exitCode, string output) : Exception(message)
{
    /// <summary>buildah's exit code.</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>The end of what it printed, stdout and stderr interleaved.</summary>
    public string Output { get; } = output;
}

/// <summary>A Dockerfile step that failed when buildah ran it; its output was shown as it ran.</summary>
public sealed class StepFailedException(string step, BuildahException cause)
    : BuildahException($"step {step} failed: {cause?.Message}", cause?.ExitCode ?? -1, cause?.Output ?? "")
{
    /// <summary>The step, as the build's output labels it.</summary>
    public string Step { get; } = step;
}

/// <summary>
/// The buildah commands a build uses, on one storage root. Steps run with chroot isolation unless
/// <c>BUILDAH_ISOLATION</c> says otherwise: it needs no user namespaces or runtime, which CI
/// machines and containers often lack.
/// </summary>
public sealed class Buildah(BuildahStorage storage, string executable = "buildah")
{
    private const int KeptLines = 40;

    /// <summary>Runs <c>buildah bud</c> on one Dockerfile into the image <paramref name="tag"/>; <paramref name="output"/> hears each line it prints.</summary>
    public Task BudAsync(string dockerfile, string context, string tag, string platform, IReadOnlyDictionary<string, string> buildArgs, Action<string>? output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(buildArgs);
        // --quiet: only what the step itself prints, not buildah's own progress.
        List<string> args = ["bud", "--quiet", "--layers=false", "--platform", platform, "-f", dockerfile, "-t", tag];
        if (Environment.GetEnvironmentVariable("BUILDAH_ISOLATION") is null)
        {
            args.AddRange(["--isolation", "chroot"]);
        }

        foreach (var (name, value) in buildArgs)
        {
            args.AddRange(["--build-arg", $"{name}={value}"]);
        }

        args.Add(context);
        Action<string>? stepOutput = output is null ? null : line =>
        {
            if (!IsImageId(line))
            {
                output(line);
            }
        };
        return RunAsync(args, stepOutput, cancellationToken);
    }

    // The image id bud prints last, even with --quiet: not the step's output.
    private static bool IsImageId(string line) => line.Length == 64 && line.All(char.IsAsciiHexDigitLower);

    /// <summary>Pulls <paramref name="reference"/> for <paramref name="platform"/> into storage.</summary>
    public Task PullAsync(string reference, string platform, CancellationToken cancellationToken) =>
        RunAsync(["pull", "--quiet", $"--tls-verify={(storage.TlsVerify ? "true" : "false")}", "--platform", platform, reference], null, cancellationToken);

    /// <summary>Copies the stored image <paramref name="image"/> to <paramref name="destination"/> (e.g. <c>oci:DIR:NAME</c>).</summary>
    public Task PushAsync(string image, string destination, CancellationToken cancellationToken) =>
        RunAsync(["push", "--quiet", image, destination], null, cancellationToken);

    /// <summary>Stores the image at <paramref name="source"/> (e.g. <c>oci:DIR:NAME</c>) under the name <paramref name="name"/>.</summary>
    public async Task LoadAsync(string source, string name, CancellationToken cancellationToken)
    {
        var id = (await RunAsync(["pull", "--quiet", source], null, cancellationToken)).Trim().Split('\n')[^1];
        await RunAsync(["tag", id, name], null, cancellationToken);
    }

    /// <summary>Removes stored images by name; names it does not have are no error.</summary>
    public async Task RemoveImagesAsync(IEnumerable<string> names)
    {
        foreach (var name in names)
        {
            try
            {
                await RunAsync(["rmi", "--force", name], null, CancellationToken.None);
            }
            catch (BuildahException)
            {
                // already gone, or never made: nothing to clean
            }
        }
    }

    // Runs one command; returns its standard output. A cancelled command is killed with its children.
    private async Task<string> RunAsync(List<string> args, Action<string>? output, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(executable) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (flag, value) in new[] { ("--root", storage.Root), ("--runroot", storage.RunRoot), ("--storage-driver", storage.StorageDriver) })
        {
            if (value is not null)
            {
                start.ArgumentList.Add(flag);
                start.ArgumentList.Add(value);
            }
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = new Process { StartInfo = start };
        var stdout = new System.Text.StringBuilder();
        var tail = new Queue<string>();
        void Hear(string? line, bool isStdout)
        {
            if (line is null)
            {
                return;
            }

            lock (tail)
            {
                if (isStdout)
                {
                    stdout.AppendLine(line);
                }

                tail.Enqueue(line);
                if (tail.Count > KeptLines)
                {
                    tail.Dequeue();
                }
            }

            output?.Invoke(line);
        }

        process.OutputDataReceived += (_, e) => Hear(e.Data, isStdout: true);
        process.ErrorDataReceived += (_, e) => Hear(e.Data, isStdout: false);
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new BuildahException($"cannot run {executable} ({e.Message}); install buildah (apt-get install buildah)", -1, "");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }

        if (process.ExitCode != 0)
        {
            string said;
            lock (tail)
            {
                said = string.Join('\n', tail);
            }

            throw new BuildahException($"buildah {args[0]} failed with exit code {process.ExitCode}", process.ExitCode, said);
        }

        lock (tail)
        {
            return stdout.ToString();
        }
    }
}
