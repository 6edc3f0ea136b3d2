using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Abuse.Tests;
using Builder.Contracts;

namespace Contracts.Tests;

/// <summary>
/// The generated contracts: the checked-in AsyncAPI document and TypeScript declarations are
/// exactly what the C# contracts generate (set BUILDER_UPDATE_CONTRACTS=1 to rewrite them), the
/// official AsyncAPI parser accepts the document, tsc --strict compiles the document's client
/// example against the declarations and rejects each deliberately wrong use, and the gateway serves them.
/// </summary>
public sealed partial class ContractDocumentTests
{
    private static readonly string Root = FindRoot();
    private static readonly string ContractsDir = Path.Combine(Root, "tests", "Contracts");

    [Fact]
    public void Checked_in_asyncapi_json_is_what_the_csharp_contracts_generate() =>
        AssertCheckedIn(Path.Combine(Root, "docs", "asyncapi.json"), ProtocolContracts.AsyncApiJson());

    [Fact]
    public void Checked_in_typescript_declarations_are_what_the_csharp_contracts_generate() =>
        AssertCheckedIn(Path.Combine(Root, "docs", "builder-events.d.ts"), ProtocolContracts.TypeScript());

    [Fact]
    public void Checked_in_protocol_reference_is_what_the_csharp_contracts_generate() =>
        AssertCheckedIn(Path.Combine(Root, "docs", "protocol.md"), ProtocolContracts.Markdown());

    [Fact]
    public async Task Official_asyncapi_parser_validates_the_document()
    {
        var (exit, stdout) = await NodeAsync(Path.Combine(ContractsDir, "validate.mjs"), Path.Combine(Root, "docs", "asyncapi.json"));
        Assert.True(exit == 0, stdout);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.DoesNotContain(lines, l => l["severity"]?.GetValue<int>() is 0 or 1); // no error, no warning
        var summary = lines[^1];
        Assert.True(summary["ok"]!.GetValue<bool>());
        Assert.Equal("3.0.0", summary["version"]!.GetValue<string>());
        Assert.Equal(["/builder"], summary["channels"]!.AsArray().Select(c => c!.GetValue<string>()));
        var messages = summary["messages"]!.AsArray().Select(m => m!.GetValue<string>()).ToHashSet(StringComparer.Ordinal);
        Assert.Superset(new HashSet<string>([.. EventTypes.Publishable, EventTypes.DecisionRequired, EventTypes.DecisionResolved, "authenticate", "join-project", "leave-project", "user:decision:response", "pong", "ping"]), messages);
        Assert.Equal(ProtocolContracts.ServerEvents.Count + ProtocolContracts.ClientEvents.Count, summary["operations"]!.GetValue<int>());
    }

    [Fact]
    public void Asyncapi_has_the_validators_enums_ranges_and_the_error_codes()
    {
        var doc = ProtocolContracts.AsyncApi();
        var status = doc["components"]!["schemas"]!["agent.status.update"]!["properties"]!["payload"]!["properties"]!;
        Assert.Equal(EventTypes.AgentTypes, status["agentType"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(EventTypes.AgentStatuses, status["status"]!["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(0, status["progress"]!["minimum"]!.GetValue<double>());
        Assert.Equal(100, status["progress"]!["maximum"]!.GetValue<double>());
        var stage = doc["components"]!["schemas"]!["deployment.progress"]!["properties"]!["payload"]!["properties"]!["stage"]!;
        Assert.Equal(EventTypes.DeploymentStages, stage["enum"]!.AsArray().Select(v => v!.GetValue<string>()));
        var codes = doc["info"]!["x-error-codes"]!.AsArray().Select(c => c!["code"]!.GetValue<string>()).ToList();
        foreach (var code in new[] { "TOKEN_EXPIRED", "TOKEN_INVALID", "TOKEN_MISSING", "FORBIDDEN", "INVALID_PAYLOAD", "RATE_LIMITED", "DECISION_NOT_FOUND", "HEARTBEAT_TIMEOUT" })
        {
            Assert.Contains(code, codes);
        }

        Assert.Equal("receive", doc["operations"]!["receive.join-project"]!["action"]!.GetValue<string>());
        Assert.Equal("send", doc["operations"]!["send.build.progress"]!["action"]!.GetValue<string>());
    }

    /// <summary>The schemas are recorded from the validator's checks: a payload made from a schema passes, and breaking any constraint of it is reported on that field.</summary>
    [Fact]
    public void Payload_schemas_agree_with_the_validator()
    {
        foreach (var type in EventTypes.Publishable)
        {
            var schema = EventValidator.PayloadSchema(type)!;
            var valid = Example(schema);
            Assert.True(EventValidator.Validate(type, Element(valid)).Count == 0, $"{type}: {valid.ToJsonString()} → {string.Join("; ", EventValidator.Validate(type, Element(valid)))}");
            foreach (var (path, broken) in Breakings(schema, valid, "payload"))
            {
                var errors = EventValidator.Validate(type, Element(broken));
                Assert.True(errors.Any(e => e.Field.StartsWith(path, StringComparison.Ordinal)), $"{type}: breaking {path} ({broken.ToJsonString()}) was not reported: {string.Join("; ", errors)}");
            }
        }

        Assert.Null(EventValidator.PayloadSchema("no:such:event"));
    }

    [Fact]
    public async Task Document_client_example_compiles_with_tsc_strict()
    {
        var (exit, stdout) = await NodeAsync(Path.Combine(ContractsDir, "node_modules", "typescript", "bin", "tsc"), "-p", Path.Combine(ContractsDir, "tsconfig.json"));
        Assert.True(exit == 0, stdout);
    }

    [Fact]
    public async Task Each_deliberately_wrong_use_fails_to_compile()
    {
        var (exit, stdout) = await NodeAsync(Path.Combine(ContractsDir, "node_modules", "typescript", "bin", "tsc"), "-p", Path.Combine(ContractsDir, "tsconfig.wrong.json"));
        Assert.NotEqual(0, exit);
        var wrongLines = File.ReadAllLines(Path.Combine(ContractsDir, "wrong-use.ts"))
            .Select((text, i) => (text, line: i + 1))
            .Where(l => l.text.Contains("// wrong:", StringComparison.Ordinal))
            .Select(l => l.line)
            .ToList();
        Assert.True(wrongLines.Count >= 5);
        var reported = ErrorLine().Matches(stdout).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        Assert.All(wrongLines, line => Assert.True(reported.Contains(line), $"line {line} of wrong-use.ts compiled:\n{stdout}"));
        Assert.All(reported, line => Assert.Contains(line, wrongLines)); // and nothing else failed
    }

    [Fact]
    public async Task Gateway_serves_the_generated_contracts()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        Assert.Equal(ProtocolContracts.AsyncApiJson(), await gateway.Http.GetStringAsync("asyncapi.json"));
        Assert.Equal(ProtocolContracts.TypeScript(), await gateway.Http.GetStringAsync("builder-events.d.ts"));
        using var response = await gateway.Http.GetAsync("asyncapi.json");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }

    [GeneratedRegex(@"wrong-use\.ts\((\d+),\d+\): error TS\d+")]
    private static partial Regex ErrorLine();

    private static void AssertCheckedIn(string path, string generated)
    {
        if (Environment.GetEnvironmentVariable("BUILDER_UPDATE_CONTRACTS") == "1")
        {
            File.WriteAllText(path, generated);
        }

        Assert.True(File.Exists(path), $"{path} is missing: run this test with BUILDER_UPDATE_CONTRACTS=1");
        var checkedIn = File.ReadAllText(path).ReplaceLineEndings("\n");
        Assert.True(checkedIn == generated, $"{Path.GetFileName(path)} differs from what the C# contracts generate: the contracts changed without it. Run this test with BUILDER_UPDATE_CONTRACTS=1 and commit the file.");
    }

    private static JsonElement Element(JsonNode node) => JsonDocument.Parse(node.ToJsonString()).RootElement.Clone();

    /// <summary>A value that satisfies <paramref name="schema"/> (every property present).</summary>
    private static JsonNode Example(JsonNode schema)
    {
        if (schema["enum"] is JsonArray values)
        {
            return values[^1]!.DeepClone();
        }

        var type = schema["type"] is JsonArray types ? types[0]!.GetValue<string>() : schema["type"]?.GetValue<string>();
        switch (type)
        {
            case "object":
                var obj = new JsonObject();
                foreach (var (name, property) in schema["properties"]?.AsObject() ?? [])
                {
                    obj[name] = Example(property!);
                }

                return obj;
            case "array":
                return schema["items"] is { } items ? new JsonArray(Example(items)) : [];
            case "integer":
            case "number":
                var min = schema["minimum"]?.GetValue<double>() ?? 0;
                var max = schema["maximum"]?.GetValue<double>() ?? min + 10;
                return JsonValue.Create(Math.Floor((min + max) / 2));
            case "boolean":
                return JsonValue.Create(true);
            case "string":
                return JsonValue.Create("text");
            default:
                return new JsonObject { ["any"] = 1 };
        }
    }

    /// <summary>Copies of <paramref name="valid"/> each breaking one constraint: a required field removed, an enum, range, type or minimum length violated.</summary>
    private static IEnumerable<(string Path, JsonNode Broken)> Breakings(JsonNode schema, JsonNode valid, string path)
    {
        if (schema["type"]?.ToJsonString() is not { } typeText || !typeText.Contains("object", StringComparison.Ordinal))
        {
            yield break;
        }

        var required = schema["required"]?.AsArray().Select(r => r!.GetValue<string>()).ToHashSet(StringComparer.Ordinal) ?? [];
        foreach (var (name, property) in schema["properties"]!.AsObject())
        {
            var fieldPath = $"{path}.{name}";
            IEnumerable<JsonNode?> bad = [];
            if (required.Contains(name))
            {
                yield return (fieldPath, Without(valid, name));
            }

            if (property!["enum"] is not null)
            {
                bad = [JsonValue.Create("not-one-of-them")];
            }
            else if (property["minimum"] is { } min)
            {
                bad = property["maximum"] is { } max
                    ? [JsonValue.Create(min.GetValue<double>() - 1), JsonValue.Create(max.GetValue<double>() + 1), JsonValue.Create("12")]
                    : [JsonValue.Create(min.GetValue<double>() - 1), JsonValue.Create("12")];
            }
            else if (property["minLength"] is not null)
            {
                bad = [JsonValue.Create(string.Empty), JsonValue.Create(5)];
            }
            else if (property["type"]?.ToJsonString() == "\"boolean\"")
            {
                bad = [JsonValue.Create("yes")];
            }
            else if (property["minItems"] is not null)
            {
                bad = [new JsonArray()];
            }

            foreach (var value in bad)
            {
                yield return (fieldPath, With(valid, name, value));
            }

            if (property["properties"] is not null)
            {
                foreach (var (nestedPath, nested) in Breakings(property, valid[name]!, fieldPath))
                {
                    yield return (nestedPath, With(valid, name, nested));
                }
            }
        }
    }

    private static JsonNode Without(JsonNode obj, string name)
    {
        var copy = obj.DeepClone().AsObject();
        copy.Remove(name);
        return copy;
    }

    private static JsonNode With(JsonNode obj, string name, JsonNode? value)
    {
        var copy = obj.DeepClone().AsObject();
        copy[name] = value?.DeepClone();
        return copy;
    }

    private static async Task<(int Exit, string Output)> NodeAsync(params string[] args)
    {
        var script = Path.GetFullPath(args[0]);
        if (!Directory.Exists(Path.Combine(ContractsDir, "node_modules")))
        {
            throw new InvalidOperationException($"{ContractsDir}/node_modules is missing: run npm ci there (test.sh does)");
        }

        var info = new ProcessStartInfo("node") { WorkingDirectory = ContractsDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        foreach (var a in args.Skip(1))
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Builder.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("the repository root (Builder.slnx) was not found");
    }
}
