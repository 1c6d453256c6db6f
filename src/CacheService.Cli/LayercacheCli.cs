using CacheService.Client;
using CacheService.Core;
using CacheService.Dockerfile;
using Grpc.Core;

namespace CacheService.Cli;

/// <summary>Where the command writes and what it can see of its surroundings.</summary>
/// <param name="Out">Results (the JSON object with <c>--json</c>).</param>
/// <param name="Error">Warnings, progress and errors.</param>
/// <param name="IsTerminal">True when stdout is a terminal: progress is drawn as a bar.</param>
/// <param name="Environment">Reads an environment variable.</param>
/// <param name="Time">The clock ages are measured with.</param>
internal sealed record CliConsole(TextWriter Out, TextWriter Error, bool IsTerminal, Func<string, string?> Environment, TimeProvider Time);

/// <summary>The options every command that talks to the server shares.</summary>
internal sealed record ServerTarget(Uri Address, string Namespace, IReadOnlyList<string> Fallbacks, string? Token = null, string? CaFile = null, string? ClientCertificate = null, string? ClientKey = null);

/// <summary>
/// The <c>layercache</c> command line. Exit codes: 0 done, 1 the command failed (the message
/// names the cause), 2 the command was called wrongly (the usage follows).
/// </summary>
internal static class LayercacheCli
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int Usage = 2;

    public const string DefaultServer = "http://127.0.0.1:50051";

    // Commands that only write or report one namespace take no fallbacks; the ones that read take them.
    private static readonly string[] ServerOptions = ["--server", "--namespace", "--token", "--ca-file", "--client-cert", "--client-key"];
    private static readonly string[] ReadingServerOptions = [.. ServerOptions, "--fallback-namespace"];
    private static readonly string[] PlanOptions = ["--file", "--context", "--target", "--build-arg", "--platform", "--base"];
    private static readonly string[] BuildahOptions = ["--tag", "--output", "--root", "--runroot", "--storage-driver", "--tls-verify"];
    private static readonly Dictionary<string, string> Aliases = new(StringComparer.Ordinal) { ["-f"] = "--file", ["-o"] = "--output", ["-t"] = "--tag", ["-h"] = "--help" };

    private static readonly Dictionary<string, Command> Commands = new(StringComparer.Ordinal)
    {
        ["plan"] = new("plan [-f Dockerfile] [--context DIR] [--target STAGE] [--build-arg K=V]... [--platform OS/ARCH] [--base REF=DIGEST]... [--json]",
            "Resolve every step of a Dockerfile against the cache: CACHED, MISS or PENDING (after a miss).",
            [.. ReadingServerOptions, .. PlanOptions], ["--json"], PlanCommands.PlanAsync),
        ["build"] = new("build [CONTEXT] [plan options] [-t NAME] [--output oci:DIR | oci-archive:FILE] [--root DIR] [--runroot DIR] [--storage-driver NAME] [--tls-verify false] [--json]",
            "Build a Dockerfile with buildah, taking every step the cache has from it and caching the steps it runs.",
            [.. ReadingServerOptions, .. PlanOptions, .. BuildahOptions], ["--json"], BuildCommand.RunAsync, Positionals: 1),
        ["history"] = new("history [plan options] [--json]",
            "Show the cached chain of a Dockerfile, newest step first: layer, age, size, instruction.",
            [.. ReadingServerOptions, .. PlanOptions], ["--json"], PlanCommands.HistoryAsync),
        ["push"] = new("push --key KEY --layer FILE [--json]",
            "Upload a layer (gzip or plain tar) and commit it under KEY; prints the layer descriptor.",
            [.. ServerOptions, "--key", "--layer"], ["--json"], TransferCommands.PushAsync),
        ["pull"] = new("pull (--key KEY | --digest DIGEST) -o FILE",
            "Download a layer to FILE, resuming a partial FILE, and verify its digest.",
            [.. ReadingServerOptions, "--key", "--digest", "--output"], [], TransferCommands.PullAsync),
        ["key"] = new("key --parent STATE --instruction TEXT [--arg K=V]... [--sources DIGEST] [--platform OS/ARCH] [--json]",
            "Compute one step's cache key locally, with the same function the server uses.",
            ["--parent", "--instruction", "--arg", "--sources", "--platform"], ["--json"], AdminCommands.KeyAsync),
        ["stats"] = new("stats [--json]",
            "Hit rate and storage of the namespace.",
            ServerOptions, ["--json"], AdminCommands.StatsAsync),
        ["token"] = new("token (create --name NAME --scope SCOPE... | list | revoke --name NAME) --tokens-file PATH",
            "Edit a tokens file offline: SCOPE is read:PATTERN, write:PATTERN or admin (PATTERN a namespace, team/* or *).",
            ["--tokens-file", "--name", "--scope"], [], TokenCommands.RunAsync, Positionals: 1),
        ["delete"] = new("delete --key KEY...",
            "Drop keys from the namespace.",
            [.. ServerOptions, "--key"], [], AdminCommands.DeleteAsync),
    };

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            await console.Out.WriteAsync(MainHelp());
            return args.Length == 0 ? Usage : Ok;
        }

        if (!Commands.TryGetValue(args[0], out var command))
        {
            await console.Error.WriteAsync($"layercache: unknown command '{args[0]}'\n\n{MainHelp()}");
            return Usage;
        }

        try
        {
            var parsed = Arguments.Parse(args[1..], command.Valued.ToHashSet(), command.Switches.Append("--help").ToHashSet(), Aliases, command.Positionals);
            if (parsed.Has("--help"))
            {
                await console.Out.WriteAsync(command.Help(args[0]));
                return Ok;
            }

            return await command.Run(parsed, console, cancellationToken);
        }
        catch (UsageException e)
        {
            await console.Error.WriteAsync($"layercache {args[0]}: {e.Message}\n\n{command.Help(args[0])}");
            return Usage;
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            await console.Error.WriteLineAsync($"layercache {args[0]}: cancelled");
            return Failed;
        }
        catch (Exception e) when (Describe(e) is { } message)
        {
            await console.Error.WriteLineAsync($"layercache {args[0]}: {message}");
            return Failed;
        }
    }

    /// <summary>Reads --server, --namespace, --fallback-namespace and --token, with their environment defaults.</summary>
    public static ServerTarget Target(Arguments args, CliConsole console)
    {
        var server = args.Value("--server") ?? console.Environment("CACHESERVICE_ADDR") ?? DefaultServer;
        if (!server.Contains("://", StringComparison.Ordinal))
        {
            server = "http://" + server;
        }

        if (!Uri.TryCreate(server, UriKind.Absolute, out var address) || address.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"--server must be host:port or an http(s) URL, got '{server}'");
        }

        var ns = args.Value("--namespace") ?? console.Environment("CACHESERVICE_NAMESPACE") ?? "default";
        var token = args.Value("--token") ?? console.Environment("CACHESERVICE_TOKEN");
        var caFile = args.Value("--ca-file") ?? console.Environment("CACHESERVICE_CA_FILE");
        var clientCertificate = args.Value("--client-cert") ?? console.Environment("CACHESERVICE_CLIENT_CERT");
        var clientKey = args.Value("--client-key") ?? console.Environment("CACHESERVICE_CLIENT_KEY");
        foreach (var (option, file) in new[] { ("--ca-file", caFile), ("--client-cert", clientCertificate), ("--client-key", clientKey) })
        {
            if (!string.IsNullOrEmpty(file) && !File.Exists(file))
            {
                throw new UsageException($"{option}: {file} does not exist");
            }
        }

        if (string.IsNullOrEmpty(clientCertificate) != string.IsNullOrEmpty(clientKey))
        {
            throw new UsageException("--client-cert and --client-key go together");
        }

        return new ServerTarget(address, ns, args.Values("--fallback-namespace"), NullIfEmpty(token), NullIfEmpty(caFile), NullIfEmpty(clientCertificate), NullIfEmpty(clientKey));
    }

    public static CacheServiceClient Connect(ServerTarget target) => new(new CacheServiceClientOptions
    {
        Address = target.Address,
        Token = target.Token,
        CaFile = target.CaFile,
        ClientCertificateFile = target.ClientCertificate,
        ClientKeyFile = target.ClientKey,
    });

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    /// <summary>Parses a digest option, as a usage error when it is malformed.</summary>
    public static Digest DigestOption(Arguments args, string name) =>
        Digest.TryParse(args.Value(name), out var digest) ? digest : throw new UsageException($"{name} must be sha256:<64 lower-case hex>");

    // The message that names the cause of a failure, or null for a bug (which then surfaces).
    private static string? Describe(Exception e) => e switch
    {
        // The server itself answered UNAVAILABLE: it is up, a backend behind it (index, blobs) is not.
        RpcException { StatusCode: StatusCode.Unavailable, Status.DebugException: null } rpc =>
            $"the server is up but its {rpc.Status.Detail}: its operator can see which backend on its /readyz page; retry once it is back (builds still run, without the cache)",
        RpcException { StatusCode: StatusCode.Unavailable } rpc => $"cannot reach the server ({rpc.Status.Detail}); is it running (make run) and is --server right?",
        RpcException { StatusCode: StatusCode.DeadlineExceeded } => "the server did not answer in time",
        RpcException { StatusCode: StatusCode.Unauthenticated } rpc => $"the server wants a token ({rpc.Status.Detail}); pass --token or set CACHESERVICE_TOKEN",
        RpcException { StatusCode: StatusCode.PermissionDenied } rpc => $"not allowed: {rpc.Status.Detail}",
        RpcException { StatusCode: StatusCode.ResourceExhausted } rpc =>
            $"refused, nothing was stored: {rpc.Status.Detail}. The server's operator sets budgets and limits (CacheService:Eviction, CacheService:Limits)",
        RpcException rpc => $"{rpc.StatusCode}: {rpc.Status.Detail}",
        InvalidFieldException or DockerfileSyntaxException or InvalidDataException => e.Message,
        IOException or UnauthorizedAccessException => e.Message,
        _ => null,
    };

    private static string MainHelp() =>
        "layercache: plan Dockerfiles against a CacheService layer cache, push and pull layers.\n\n" +
        "Usage: layercache COMMAND [options]   (layercache COMMAND --help for its options)\n\nCommands:\n" +
        string.Concat(Commands.Select(c => $"  {c.Key,-8} {c.Value.Summary}\n")) +
        "\nServer options (plan, build, history, push, pull, stats, delete; --fallback-namespace for the reading ones):\n" +
        $"  --server ADDR               gRPC address; default $CACHESERVICE_ADDR, else {DefaultServer}\n" +
        "  --namespace NS              namespace to read and write; default $CACHESERVICE_NAMESPACE, else 'default'\n" +
        "  --fallback-namespace NS     also read NS after --namespace (repeatable, in order)\n" +
        "  --token SECRET              a token's secret, for a server that checks them; default $CACHESERVICE_TOKEN\n" +
        "  --ca-file PEM               CA certificates of an https:// server; default $CACHESERVICE_CA_FILE\n" +
        "  --client-cert PEM, --client-key PEM   a client certificate for mutual TLS; default $CACHESERVICE_CLIENT_CERT, _KEY\n" +
        "\nExit codes: 0 done, 1 failed (the message names the cause), 2 wrong usage.\n";

    private sealed record Command(string Synopsis, string Summary, IReadOnlyList<string> Valued, IReadOnlyList<string> Switches, Func<Arguments, CliConsole, CancellationToken, Task<int>> Run, int Positionals = 0)
    {
        public string Help(string name)
        {
            var text = $"Usage: layercache {Synopsis}\n\n{Summary}\n\n";
            foreach (var option in Valued.Concat(Switches).Append("--help").Distinct())
            {
                var (form, help) = OptionHelp.GetValueOrDefault($"{name} {option}", OptionHelp[option]);
                text += $"  {form,-26} {help}\n";
            }

            return text + "\nExit codes: 0 done, 1 failed, 2 wrong usage.\n";
        }
    }

    // Every option of every command, as its --help shows it; "COMMAND --option" where one command means it otherwise.
    private static readonly Dictionary<string, (string Form, string Text)> OptionHelp = new(StringComparer.Ordinal)
    {
        ["--file"] = ("-f, --file FILE", "the Dockerfile; default DIR/Dockerfile"),
        ["--context"] = ("--context DIR", "the build context; default the current directory"),
        ["--target"] = ("--target STAGE", "the stage to build; default the last one"),
        ["--build-arg"] = ("--build-arg K=V", "a build argument (repeatable); counts only where an ARG declares K"),
        ["--platform"] = ("--platform OS/ARCH", "the target platform; default linux/ and this machine's architecture"),
        ["--base"] = ("--base REF=DIGEST", "the digest an unpinned image reference of the Dockerfile stands for (repeatable)"),
        ["--tag"] = ("-t, --tag NAME", "put the image in buildah's storage under NAME"),
        ["--output"] = ("-o, --output DEST", "an OCI layout (oci:DIR[:NAME]) or archive (oci-archive:FILE[:NAME])"),
        ["pull --output"] = ("-o, --output FILE", "the file to write (a partial one is resumed)"),
        ["--root"] = ("--root DIR", "buildah's storage root (a fresh root builds from nothing)"),
        ["--runroot"] = ("--runroot DIR", "buildah's state directory"),
        ["--storage-driver"] = ("--storage-driver NAME", "buildah's storage driver, e.g. vfs"),
        ["--tls-verify"] = ("--tls-verify false", "pull base images over plain HTTP or unverified TLS"),
        ["--server"] = ("--server ADDR", "gRPC address (host:port or http(s) URL); default $CACHESERVICE_ADDR, else " + DefaultServer),
        ["--namespace"] = ("--namespace NS", "namespace to read and write; default $CACHESERVICE_NAMESPACE, else 'default'"),
        ["--fallback-namespace"] = ("--fallback-namespace NS", "read NS too, after --namespace (repeatable, in order)"),
        ["--token"] = ("--token SECRET", "a token's secret, for a server that checks them; default $CACHESERVICE_TOKEN"),
        ["--ca-file"] = ("--ca-file PEM", "CA certificates of an https:// server; default $CACHESERVICE_CA_FILE"),
        ["--client-cert"] = ("--client-cert PEM", "with --client-key: a client certificate for mutual TLS; default $CACHESERVICE_CLIENT_CERT"),
        ["--client-key"] = ("--client-key PEM", "the key of --client-cert; default $CACHESERVICE_CLIENT_KEY"),
        ["--key"] = ("--key KEY", "a cache key, sha256:<64 hex>"),
        ["delete --key"] = ("--key KEY", "a cache key to drop, sha256:<64 hex> (repeatable)"),
        ["--layer"] = ("--layer FILE", "the layer to push: a gzip or plain tar"),
        ["--digest"] = ("--digest DIGEST", "the layer's blob digest, to pull without a key"),
        ["--parent"] = ("--parent STATE", "the state below the step: a pinned base digest or the previous step's state"),
        ["--instruction"] = ("--instruction TEXT", "the instruction as written, e.g. 'RUN make' (normalized before hashing)"),
        ["--arg"] = ("--arg K=V", "an arg the step observes (repeatable): build args, ENV, and =user/=shell (docs/cache-key.md)"),
        ["--sources"] = ("--sources DIGEST", "the digest of what a COPY/ADD or bind mount reads"),
        ["--tokens-file"] = ("--tokens-file PATH", "the tokens file the server reads (created if missing)"),
        ["--name"] = ("--name NAME", "the token's name"),
        ["--scope"] = ("--scope SCOPE", "read:PATTERN, write:PATTERN or admin (repeatable)"),
        ["--json"] = ("--json", "print one JSON object instead of text"),
        ["--help"] = ("-h, --help", "this help"),
    };
}
