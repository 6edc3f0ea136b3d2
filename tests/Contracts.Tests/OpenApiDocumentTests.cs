using System.Text.Json.Nodes;
using Abuse.Tests;
using Builder.Contracts;
using Microsoft.OpenApi;

namespace Contracts.Tests;

/// <summary>
/// docs/openapi.json: exactly what the gateway serves at /openapi.json (set BUILDER_UPDATE_CONTRACTS=1
/// to rewrite it), read without an error or warning by Microsoft.OpenApi's reader and validator,
/// and its producer body schemas are the validator's.
/// </summary>
public sealed partial class ContractDocumentTests
{
    private static readonly string OpenApiPath = Path.Combine(Root, "docs", "openapi.json");

    [Fact]
    public async Task Checked_in_openapi_json_is_what_the_gateway_serves()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        using var response = await gateway.Http.GetAsync("openapi.json");
        Assert.True(response.IsSuccessStatusCode, $"GET /openapi.json: {(int)response.StatusCode}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var served = (await response.Content.ReadAsStringAsync()).ReplaceLineEndings("\n").TrimEnd('\n') + "\n";
        AssertCheckedIn(OpenApiPath, served);
    }

    [Fact]
    public void OpenApi_reader_and_validator_accept_the_document()
    {
        var result = OpenApiDocument.Parse(File.ReadAllText(OpenApiPath), "json");
        Assert.True(result.Diagnostic is null || (result.Diagnostic.Errors.Count == 0 && result.Diagnostic.Warnings.Count == 0), string.Join("\n", result.Diagnostic!.Errors.Concat(result.Diagnostic.Warnings).Select(e => $"{e.Pointer}: {e.Message}")));
        var document = result.Document!;
        Assert.Equal(OpenApiSpecVersion.OpenApi3_1, result.Diagnostic!.SpecificationVersion);
        var problems = document.Validate(ValidationRuleSet.GetDefaultRuleSet())?.ToList() ?? [];
        Assert.True(problems.Count == 0, string.Join("\n", problems.Select(e => $"{e.Pointer}: {e.Message}")));

        // every producer endpoint, with its body and its answers, the refusals with the error body
        var publish = document.Paths["/api/projects/{projectId}/events"].Operations![HttpMethod.Post];
        var body = publish.RequestBody!.Content!["application/json"].Schema!;
        Assert.Equal(["ProducerEvent", "ProducerEventBatch"], body.OneOf!.Select(s => ((OpenApiSchemaReference)s).Reference.Id));
        Assert.Equal(["EventEnvelope", "EventEnvelopeBatch"], publish.Responses!["202"].Content!["application/json"].Schema!.OneOf!.Select(s => ((OpenApiSchemaReference)s).Reference.Id));
        foreach (var status in new[] { "400", "401", "403", "413", "503" })
        {
            Assert.Equal("Error", ((OpenApiSchemaReference)publish.Responses[status].Content!["application/json"].Schema!).Reference.Id);
        }

        Assert.Equal("DecisionRequest", RequestSchema(document, "/api/projects/{projectId}/decisions"));
        Assert.Equal("BuildRequest", RequestSchema(document, "/api/projects/{projectId}/builds"));
        Assert.Equal("BuildCancelled", ((OpenApiSchemaReference)document.Paths["/api/projects/{projectId}/builds/{buildId}/cancel"].Operations![HttpMethod.Post].Responses!["202"].Content!["application/json"].Schema!).Reference.Id);
        Assert.Contains("409", document.Paths["/api/projects/{projectId}/builds"].Operations![HttpMethod.Post].Responses!.Keys);
        Assert.Equal(["apiKey", "bearer"], document.Components!.SecuritySchemes!.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("/metrics", document.Paths.Keys);
        Assert.DoesNotContain(document.Paths.Keys, p => p.StartsWith("/dev/", StringComparison.Ordinal));

        // one event schema per publishable type: its type, and the validator's payload schema
        var schemas = document.Components.Schemas!;
        var events = schemas["ProducerEvent"].OneOf!.Select(s => ((OpenApiSchemaReference)s).Reference.Id).ToList();
        Assert.Equal(EventTypes.Publishable.Select(t => "Event." + t.Replace(':', '.')), events);
        var served = JsonNode.Parse(File.ReadAllText(OpenApiPath))!["components"]!["schemas"]!;
        foreach (var type in EventTypes.Publishable)
        {
            var schema = served["Event." + type.Replace(':', '.')]!;
            Assert.Equal(type, schema["properties"]!["type"]!["const"]!.GetValue<string>());
            var payload = schema["properties"]!["payload"]!;
            var expected = EventValidator.PayloadSchema(type)!;
            Assert.True(JsonNode.DeepEquals(Sorted(expected), Sorted(payload)), $"{type}: {payload.ToJsonString()} is not the validator's {expected.ToJsonString()}");
        }

        Assert.Equal("ProducerEvent", ((OpenApiSchemaReference)schemas["ProducerEventBatch"].Items!).Reference.Id);
    }

    private static string RequestSchema(OpenApiDocument document, string path) =>
        ((OpenApiSchemaReference)document.Paths[path].Operations![HttpMethod.Post].RequestBody!.Content!["application/json"].Schema!).Reference.Id!;

    /// <summary>The same JSON with object keys and the items of <c>required</c> / <c>type</c> arrays in order (the writer orders them its way), without empty <c>properties</c> (no constraint, which the writer leaves out).</summary>
    private static JsonNode? Sorted(JsonNode? node) => node switch
    {
        JsonObject o => new JsonObject(o.Where(p => !(p.Key == "properties" && p.Value is JsonObject { Count: 0 })).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => KeyValuePair.Create(p.Key, p.Key is "required" or "type" && p.Value is JsonArray a ? new JsonArray([.. a.Select(v => v!.GetValue<string>()).Order(StringComparer.Ordinal).Select(v => JsonValue.Create(v))]) : Sorted(p.Value)))),
        JsonArray a => new JsonArray([.. a.Select(Sorted)]),
        null => null,
        _ => node.DeepClone(),
    };
}
