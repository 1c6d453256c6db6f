using System.Net;
using System.Net.Sockets;
using CacheService.Blobs.S3;
using CacheService.Core.Options;
using CacheService.Index.Redis;
using CacheService.Server.Access;
using CacheService.Server.Observability;
using CacheService.Server.Registry;
using Microsoft.Extensions.Options;

namespace CacheService.Server.Hosting;

/// <summary>
/// A reason the server cannot start that the person starting it can fix: the message says what
/// and how, and the process exits 1 with it alone, no stack trace.
/// </summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// What the server checks before anything runs: every invalid option of every section, reported
/// at once, and the ports it is about to listen on.
/// </summary>
internal static class StartupChecks
{
    // Every options type the server binds; each names its configuration section in a Section constant.
    private static readonly Type[] OptionTypes =
    [
        typeof(ServerOptions), typeof(StorageOptions), typeof(LimitsOptions), typeof(EvictionOptions), typeof(ObservabilityOptions),
        typeof(AuthOptions), typeof(TlsOptions), typeof(RegistryOptions), typeof(IntegrityOptions), typeof(RedisIndexOptions), typeof(S3BlobOptions),
    ];

    /// <exception cref="StartupException">An option is invalid, or a port is taken.</exception>
    public static void Run(IServiceProvider services)
    {
        // The binder stops at the first value it cannot convert (a word for a number), and the
        // start-up validator stops with it. So each value is converted on its own first, and each
        // section is then validated on its own: a section that did not bind is skipped, its
        // values already reported.
        var configuration = services.GetRequiredService<IConfiguration>();
        var unconvertible = OptionTypes.SelectMany(t => Unconvertible(configuration, t)).ToList();
        var convertible = unconvertible.Count == 0 ? configuration : new ConfigurationBuilder()
            .AddInMemoryCollection(configuration.AsEnumerable().Where(v => !unconvertible.Exists(u => string.Equals(u.Key, v.Key, StringComparison.OrdinalIgnoreCase))))
            .Build();
        var problems = unconvertible.Select(u => u.Problem)
            .Concat(OptionTypes.SelectMany(t => (IEnumerable<string>)ValidateSection.MakeGenericMethod(t).Invoke(null, [services, convertible])!))
            .ToList();
        if (problems.Count == 0)
        {
            try
            {
                services.GetRequiredService<IStartupValidator>().Validate(); // any other options validated at start
            }
            catch (Exception e) when (e is OptionsValidationException or AggregateException or InvalidOperationException)
            {
                problems.AddRange(Failures(e));
            }
        }

        if (problems.Count > 0)
        {
            // A validator that reads another section (Auth reads Server) repeats that section's problems.
            throw new StartupException("invalid configuration:" + string.Concat(problems.Distinct(StringComparer.Ordinal).Select(p => "\n  " + p)));
        }

        var server = services.GetRequiredService<IOptions<ServerOptions>>().Value;
        ThrowIfTaken(server.ListenAddress, server.GrpcPort, "gRPC", "PORT", "GrpcPort");
        ThrowIfTaken(server.ListenAddress, server.HttpPort, "HTTP", "HTTP_PORT", "HttpPort");
    }

    /// <summary>Kestrel's bind failure, which a port taken after the check still meets, as a <see cref="StartupException"/>.</summary>
    public static StartupException? Explain(IOException bindFailure) =>
        bindFailure.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
            ? new StartupException($"{bindFailure.Message} Choose free ports: make run PORT=... HTTP_PORT=..., or --CacheService:Server:GrpcPort=... --CacheService:Server:HttpPort=...", bindFailure)
            : null;

    private static readonly System.Reflection.MethodInfo ValidateSection =
        typeof(StartupChecks).GetMethod(nameof(Validate), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;

    private static IEnumerable<string> Validate<T>(IServiceProvider services, IConfiguration convertible)
        where T : class, new()
    {
        try
        {
            _ = services.GetRequiredService<IOptions<T>>().Value;
            return [];
        }
        catch (OptionsValidationException e)
        {
            return e.Failures;
        }
        catch (InvalidOperationException)
        {
            // A value of the section does not convert: validate the rest of it without that value.
            var options = new T();
            convertible.GetSection(SectionOf(typeof(T))).Bind(options);
            try
            {
                return services.GetServices<IValidateOptions<T>>().Select(v => v.Validate(Options.DefaultName, options))
                    .Where(r => r.Failed).SelectMany(r => r.Failures ?? []).ToList();
            }
            catch (InvalidOperationException)
            {
                return []; // the validator reads another section, which does not convert either
            }
        }
    }

    // Each value of the section's properties (and of their arrays and dictionaries) that the binder cannot convert.
    private static IEnumerable<(string Key, string Problem)> Unconvertible(IConfiguration configuration, Type options)
    {
        var section = SectionOf(options);
        foreach (var property in options.GetProperties().Where(p => p.CanWrite))
        {
            var type = property.PropertyType;
            var element = type.IsArray ? type.GetElementType()
                : type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>) ? type.GetGenericArguments()[1]
                : null;
            var keys = element is null
                ? [(Name: property.Name, Type: type)]
                : configuration.GetSection($"{section}:{property.Name}").GetChildren().Select(c => (Name: $"{property.Name}:{c.Key}", Type: element));
            foreach (var (name, valueType) in keys)
            {
                var value = configuration[$"{section}:{name}"];
                if (value is not null && !Converts(configuration, $"{section}:{name}", valueType))
                {
                    yield return ($"{section}:{name}", $"{section}: {name} must be {Describe(valueType)}, not '{value}'");
                }
            }
        }
    }

    private static string SectionOf(Type options) => (string)options.GetField("Section")!.GetRawConstantValue()!;

    private static bool Converts(IConfiguration configuration, string key, Type type)
    {
        try
        {
            configuration.GetValue(type, key);
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string Describe(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type switch
        {
            _ when type == typeof(int) || type == typeof(long) => "a whole number",
            _ when type == typeof(double) => "a number",
            _ when type == typeof(bool) => "true or false",
            _ when type == typeof(TimeSpan) => "a duration such as 00:01:30",
            { IsEnum: true } => "one of " + string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant())),
            _ => "a " + type.Name,
        };
    }

    private static IEnumerable<string> Failures(Exception e) => e switch
    {
        AggregateException all => all.InnerExceptions.SelectMany(Failures),
        OptionsValidationException options => options.Failures,
        _ => [e.Message],
    };

    private static void ThrowIfTaken(string address, int port, string what, string makeVariable, string option)
    {
        if (port == 0)
        {
            return; // the system picks a free one
        }

        try
        {
            var probe = new TcpListener(IPAddress.Parse(address), port);
            probe.Start();
            probe.Stop();
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new StartupException(
                $"the {what} port {port} on {address} is in use: stop what holds it, or choose another (make run {makeVariable}={port + 1}, or --CacheService:Server:{option}={port + 1})", e);
        }
    }
}
