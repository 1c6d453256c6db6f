using System.Security.Cryptography;
using CacheService.Client;
using CacheService.Core;
using Wire = CacheService.Api.V1;

namespace CacheService.Cli;

/// <summary><c>layercache push</c> and <c>layercache pull</c>: layers to and from the cache.</summary>
internal static class TransferCommands
{
    public static async Task<int> PushAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var target = LayercacheCli.Target(args, console);
        var key = LayercacheCli.DigestOption(args, "--key");
        var path = args.Value("--layer") ?? throw new UsageException("--layer FILE is required");
        var layer = await LayerFile.DescribeAsync(path, cancellationToken);

        using var client = LayercacheCli.Connect(target);
        await using (var content = File.OpenRead(path))
        {
            var progress = new TransferProgress(console, "push", layer.Size);
            await client.UploadAsync(target.Namespace, content, layer.Digest, layer.Size, layer.MediaType, progress, cancellationToken);
            progress.Done();
        }

        var wire = new Wire.LayerDescriptor { Digest = layer.Digest.Value, DiffId = layer.DiffId.Value, Size = layer.Size, MediaType = layer.MediaType };
        var commit = await client.CommitAsync(new Wire.CommitRequest { Namespace = target.Namespace, Key = key.Value, Layer = wire }, cancellationToken);
        if (!commit.Created && commit.Layer.Digest != wire.Digest)
        {
            await console.Error.WriteLineAsync($"warning: {key} already holds {commit.Layer.Digest}; the first writer wins, yours was not recorded");
        }

        if (args.Has("--json"))
        {
            await Output.WriteJsonAsync(console.Out, writer =>
            {
                writer.WriteString("key", key.Value);
                writer.WriteString("digest", commit.Layer.Digest);
                writer.WriteString("diffId", commit.Layer.DiffId);
                writer.WriteNumber("size", commit.Layer.Size);
                writer.WriteString("mediaType", commit.Layer.MediaType);
                writer.WriteBoolean("created", commit.Created);
            });
        }
        else
        {
            await console.Out.WriteLineAsync($"{(commit.Created ? "committed" : "already cached")} {key}\n  digest    {commit.Layer.Digest}\n  diff_id   {commit.Layer.DiffId}\n  size      {commit.Layer.Size}\n  mediaType {commit.Layer.MediaType}");
        }

        return LayercacheCli.Ok;
    }

    public static async Task<int> PullAsync(Arguments args, CliConsole console, CancellationToken cancellationToken)
    {
        var target = LayercacheCli.Target(args, console);
        var output = args.Value("--output") ?? throw new UsageException("-o FILE is required");
        if ((args.Value("--key") is null) == (args.Value("--digest") is null))
        {
            throw new UsageException("give exactly one of --key and --digest");
        }

        using var client = LayercacheCli.Connect(target);
        var ns = target.Namespace;
        Digest digest;
        long size;
        if (args.Value("--key") is not null)
        {
            var key = LayercacheCli.DigestOption(args, "--key");
            var found = await client.LookupAsync(ns, key, target.Fallbacks, cancellationToken);
            if (!found.Hit)
            {
                await console.Error.WriteLineAsync($"layercache pull: {key} is not cached in {string.Join(", ", target.Fallbacks.Prepend(ns))}{(found.Degraded ? " (the cache backend could not be asked)" : "")}");
                return LayercacheCli.Failed;
            }

            (digest, size, ns) = (Digest.Parse(found.Layer.Digest, "digest"), found.Layer.Size, found.Namespace);
        }
        else
        {
            digest = LayercacheCli.DigestOption(args, "--digest");
            var stat = await client.StatLayersAsync(ns, [digest.Value], cancellationToken);
            if (stat.Present.Count == 0)
            {
                await console.Error.WriteLineAsync($"layercache pull: {digest} is not stored in {ns}");
                return LayercacheCli.Failed;
            }

            size = stat.Present[0].Size;
        }

        await using (var file = new FileStream(output, FileMode.Append, FileAccess.Write))
        {
            var offset = file.Length;
            if (offset > size)
            {
                throw new IOException($"'{output}' is longer than the layer ({offset} > {size} bytes); it is not a partial download of it");
            }

            if (offset > 0)
            {
                await console.Error.WriteLineAsync($"resuming {output} at byte {offset} of {size}");
            }

            var progress = new TransferProgress(console, "pull", size);
            if (offset < size)
            {
                await client.DownloadAsync(ns, digest, file, offset, progress, cancellationToken);
            }

            progress.Done();
        }

        await using (var check = File.OpenRead(output))
        {
            var actual = Digest.FromHash(await SHA256.HashDataAsync(check, cancellationToken));
            if (actual != digest)
            {
                File.Delete(output);
                throw new IOException($"'{output}' does not match {digest} (it has {actual}); it was removed, pull again");
            }
        }

        await console.Out.WriteLineAsync($"{output}: {digest} ({size} bytes)");
        return LayercacheCli.Ok;
    }

    /// <summary>A progress bar on a terminal, otherwise a plain line at each quarter.</summary>
    private sealed class TransferProgress(CliConsole console, string verb, long total) : IProgress<long>
    {
        private int _lastShown = -1;

        public void Report(long value)
        {
            var percent = total == 0 ? 100 : (int)(Math.Min(value, total) * 100 / total);
            if (console.IsTerminal)
            {
                if (percent != _lastShown)
                {
                    var filled = percent * 30 / 100;
                    console.Error.Write($"\r{verb} [{new string('#', filled)}{new string('.', 30 - filled)}] {percent,3}% {Output.Size(value)}/{Output.Size(total)}");
                }
            }
            else if (percent / 25 > _lastShown / 25 || _lastShown < 0)
            {
                console.Error.WriteLine($"{verb}: {percent}% of {Output.Size(total)}");
            }
            else
            {
                return;
            }

            _lastShown = percent;
        }

        public void Done()
        {
            if (console.IsTerminal && _lastShown >= 0)
            {
                console.Error.WriteLine();
            }
        }
    }
}
