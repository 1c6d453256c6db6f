using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CacheService.Testing;
using Json.Schema;
using YamlDotNet.RepresentationModel;

namespace CacheService.Deployment.Tests;

/// <summary>
/// What can be checked of helm/cacheservice without a cluster or the helm binary: the templates,
/// values.yaml and its schema agree, the chart passes only settings the server binds, and the
/// dashboard asks only for metrics the server exports.
/// </summary>
public sealed partial class HelmChartTests
{
    private static readonly string[] OptionAssemblies = ["CacheService.Server", "CacheService.Core", "CacheService.Index.Redis", "CacheService.Blobs.S3"];

    private static readonly string Chart = Path.Combine(ServiceScripts.RepositoryRoot, "helm", "cacheservice");

    private static IEnumerable<string> Templates() =>
        Directory.EnumerateFiles(Path.Combine(Chart, "templates")).Select(File.ReadAllText);

    private static JsonNode Values() => ToJson(LoadYaml(Path.Combine(Chart, "values.yaml")));

    [Fact]
    public void Every_values_path_a_template_uses_exists_in_values_yaml()
    {
        var values = Values();
        var paths = Templates().SelectMany(t => ValuesPath().Matches(t)).Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.True(paths.Count > 40, $"only {paths.Count} .Values paths found: is the pattern right?");
        var missing = paths.Where(p => p.Split('.').Aggregate((JsonNode?)values, (node, key) => (node as JsonObject)?[key]) is null
            && !IsPresentButNull(values, p)).ToList();
        Assert.True(missing.Count == 0, "not in values.yaml: " + string.Join(", ", missing));
    }

    [Fact]
    public void Values_yaml_satisfies_its_schema_and_the_schema_rejects_a_wrong_value()
    {
        var schema = JsonSchema.FromText(File.ReadAllText(Path.Combine(Chart, "values.schema.json")));
        var values = Values();
        var result = schema.Evaluate(JsonSerializer.SerializeToElement(values), new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.True(result.IsValid, string.Join("; ", Errors(result)));

        var wrong = values.DeepClone();
        wrong["index"]!["engine"] = "mongodb";
        wrong["service"]!["grpcPort"] = "fifty";
        var rejected = schema.Evaluate(JsonSerializer.SerializeToElement(wrong), new EvaluationOptions { OutputFormat = OutputFormat.List });
        Assert.False(rejected.IsValid);
        var unknown = values.DeepClone();
        unknown["replicas"] = 3; // a typo of replicaCount
        Assert.False(schema.Evaluate(JsonSerializer.SerializeToElement(unknown)).IsValid);
    }

    [Fact]
    public void Every_setting_the_chart_passes_is_one_the_server_binds()
    {
        var bound = BoundSettings();
        var set = Templates().SelectMany(t => EnvSetting().Matches(t)).Select(m => (Section: m.Groups[1].Value, Key: m.Groups[2].Value))
            .Concat(Templates().SelectMany(t => JsonSetting().Matches(t)).Select(m => (Section: m.Groups[1].Value, Key: m.Groups[2].Value)))
            .Distinct().ToList();
        Assert.True(set.Count > 20, $"only {set.Count} settings found: is the pattern right?");
        var unknown = set.Where(s => !bound.Contains($"{s.Section}:{s.Key}")).ToList();
        Assert.True(unknown.Count == 0, "the server binds no " + string.Join(", ", unknown.Select(u => $"CacheService:{u.Section}:{u.Key}")));
    }

    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_one_the_server_exports()
    {
        var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Chart, "dashboards", "cacheservice.json")))!;
        var queried = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => t!["expr"]!.GetValue<string>())
            .SelectMany(e => MetricName().Matches(e)).Select(m => HistogramSuffix().Replace(m.Value, "")).Distinct().ToList();
        Assert.Contains("cacheservice_rpc_duration_seconds", queried);

        await using var server = await TestServer.StartAsync();
        using var http = new HttpClient();
        var exported = (await http.GetStringAsync($"http://127.0.0.1:{server.HttpPort}/metrics")).Split('\n')
            .Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToHashSet();
        Assert.All(queried, name => Assert.Contains(name, exported));
    }

    [Fact]
    public void The_deployment_probes_readiness_over_grpc_and_liveness_over_http()
    {
        var deployment = File.ReadAllText(Path.Combine(Chart, "templates", "deployment.yaml"));
        Assert.Matches(@"readinessProbe:\s+grpc:", deployment);
        Assert.Matches(@"livenessProbe:\s+httpGet:\s+path: /healthz", deployment);
        Assert.Contains("secretKeyRef", deployment, StringComparison.Ordinal);
    }

    [Fact]
    public void Auth_is_on_by_default_with_tokens_from_a_secret_mounted_whole_and_the_entry_key_from_a_secret()
    {
        var values = Values();
        Assert.True(values["auth"]!["enabled"]!.GetValue<bool>());
        Assert.False(values["auth"]!["allowAnonymous"]!.GetValue<bool>());
        var deployment = File.ReadAllText(Path.Combine(Chart, "templates", "deployment.yaml"));
        Assert.Matches(@"CacheService__Auth__TokensFile\s+value: /etc/cacheservice/tokens/", deployment);
        // Mounted as a directory, not with subPath: a subPath mount never sees the Secret change.
        Assert.Matches(@"- name: tokens\s+mountPath: /etc/cacheservice/tokens\s+readOnly: true", deployment);
        Assert.Matches(@"- name: tokens\s+secret:\s+secretName: \{\{ \.Values\.auth\.existingSecret \}\}", deployment);
        Assert.Matches(@"CacheService__Integrity__EntryKey\s+valueFrom:\s+secretKeyRef:", deployment);
    }

    [Fact]
    public void The_charts_readme_creates_every_secret_the_default_values_name_with_the_keys_they_read()
    {
        var readme = File.ReadAllText(Path.Combine(Chart, "README.md"));
        var created = SecretCreation().Matches(readme).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);
        var named = 0;
        foreach (var section in Sections(Values()).Where(o => o["existingSecret"]?.GetValue<string>() is { Length: > 0 }))
        {
            var secret = section["existingSecret"]!.GetValue<string>();
            Assert.True(created.TryGetValue(secret, out var line), $"the chart's README never creates Secret {secret}, which the default values use");
            foreach (var key in section.Where(p => p.Key.EndsWith("Key", StringComparison.Ordinal) && p.Value?.GetValue<string>() is { Length: > 0 }).Select(p => p.Value!.GetValue<string>()))
            {
                Assert.Matches($@"--from-(literal|file)={Regex.Escape(key)}\b", line);
            }

            named++;
        }

        Assert.Equal(3, named); // the tokens file, the entry key, the S3 credentials

        static IEnumerable<JsonObject> Sections(JsonNode? node) => node is JsonObject o ? o.Select(p => p.Value).SelectMany(Sections).Prepend(o) : [];
    }

    [Fact]
    public void The_service_spreads_requests_over_replicas_unless_affinity_is_asked_for()
    {
        // Upload sessions live in the bucket (ReplicaPairTests): no affinity is needed by default.
        Assert.Equal("None", Values()["service"]!["sessionAffinity"]!.GetValue<string>());
        Assert.Contains("sessionAffinity: {{ .Values.service.sessionAffinity }}", File.ReadAllText(Path.Combine(Chart, "templates", "service.yaml")), StringComparison.Ordinal);
    }

    [Fact]
    public void Data_lives_on_a_claim_when_one_is_given_else_in_an_emptyDir()
    {
        Assert.Equal(string.Empty, Values()["persistence"]!["existingClaim"]!.GetValue<string>());
        var deployment = File.ReadAllText(Path.Combine(Chart, "templates", "deployment.yaml"));
        Assert.Matches(@"- name: data\s+\{\{- if \.Values\.persistence\.existingClaim \}\}\s+persistentVolumeClaim:\s+claimName: \{\{ \.Values\.persistence\.existingClaim \}\}\s+\{\{- else \}\}\s+emptyDir: \{\}", deployment);
    }

    /// <summary>Every options type the server binds, by its section without the "CacheService:" prefix, found from the types' <c>Section</c> constants.</summary>
    internal static IEnumerable<(string Section, Type Type)> OptionTypes() =>
        from type in OptionAssemblies.Select(Assembly.Load).SelectMany(a => a.GetExportedTypes())
        let section = type.GetField("Section", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() as string
        where section is not null && section.StartsWith("CacheService:", StringComparison.Ordinal)
        select (section["CacheService:".Length..], type);

    /// <summary>Every "Section:Key" the server binds.</summary>
    internal static HashSet<string> BoundSettings()
    {
        var bound = OptionTypes().SelectMany(o => o.Type.GetProperties().Where(p => p.CanWrite).Select(p => $"{o.Section}:{p.Name}")).ToHashSet(StringComparer.Ordinal);
        Assert.Contains("Server:GrpcPort", bound);
        return bound;
    }

    private static bool IsPresentButNull(JsonNode values, string path)
    {
        var parts = path.Split('.');
        var parent = parts[..^1].Aggregate((JsonNode?)values, (node, key) => (node as JsonObject)?[key]) as JsonObject;
        return parent?.ContainsKey(parts[^1]) == true;
    }

    private static IEnumerable<string> Errors(EvaluationResults result) =>
        (result.Details ?? []).Where(d => d.Errors is not null).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}"));

    private static YamlNode LoadYaml(string path)
    {
        var stream = new YamlStream();
        using var reader = new StreamReader(path);
        stream.Load(reader);
        return stream.Documents[0].RootNode;
    }

    // YAML 1.2 core schema: plain scalars that read as numbers, booleans or null are typed; quoted ones are strings.
    private static JsonNode ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(c => KeyValuePair.Create(((YamlScalarNode)c.Key).Value!, (JsonNode?)ToJson(c.Value)))),
        YamlSequenceNode list => new JsonArray([.. list.Children.Select(c => (JsonNode?)ToJson(c))]),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain } scalar => Plain(scalar.Value ?? "")!,
        YamlScalarNode scalar => JsonValue.Create(scalar.Value ?? ""),
        _ => throw new InvalidOperationException("unexpected YAML node"),
    };

    private static JsonValue? Plain(string value) => value switch
    {
        "" or "~" or "null" => null,
        "true" => JsonValue.Create(true),
        "false" => JsonValue.Create(false),
        _ when long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer) => JsonValue.Create(integer),
        _ when double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) => JsonValue.Create(number),
        _ => JsonValue.Create(value),
    };

    [GeneratedRegex(@"\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)")]
    private static partial Regex ValuesPath();

    [GeneratedRegex(@"name: CacheService__([A-Za-z0-9]+)__([A-Za-z0-9]+)")]
    private static partial Regex EnvSetting();

    [GeneratedRegex(@"dict ""CacheService"" \(dict ""([A-Za-z]+)"" \(dict ""([A-Za-z]+)""")]
    private static partial Regex JsonSetting();

    [GeneratedRegex(@"kubectl create secret generic (\S+)(.*)")]
    private static partial Regex SecretCreation();

    [GeneratedRegex(@"cacheservice_[a-z_]+")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"_(bucket|sum|count)$")]
    private static partial Regex HistogramSuffix();
}
