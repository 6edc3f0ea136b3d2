using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Abuse.Tests;
using Builder.Contracts;
using Json.Schema;

namespace Contracts.Tests;

/// <summary>
/// The JSON Schemas of docs/openapi.json, read by a JSON Schema 2020-12 validator (JsonSchema.Net):
/// the bodies the validators accept pass and the ones they refuse fail, and what a started
/// gateway really answers (envelopes, created decisions, builds, error bodies) matches them.
/// </summary>
public sealed partial class ContractDocumentTests
{
    [Fact]
    public async Task Real_bodies_and_answers_match_the_openapi_schemas()
    {
        // the document's components as the $defs of one schema (its $refs pointed there)
        var text = File.ReadAllText(OpenApiPath).Replace("#/components/schemas/", "#/$defs/", StringComparison.Ordinal);
        var defs = JsonNode.Parse(text)!["components"]!["schemas"]!;
        bool Valid(string name, string json)
        {
            var root = new JsonObject { ["$schema"] = "https://json-schema.org/draft/2020-12/schema", ["$defs"] = defs.DeepClone(), ["$ref"] = "#/$defs/" + name };
            var schema = JsonSchema.FromText(root.ToJsonString(), baseUri: new Uri($"https://builder.test/openapi/{Guid.NewGuid():N}"));
            using var doc = JsonDocument.Parse(json);
            return schema.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List }).IsValid;
        }

        // each publishable event, from the validator's schema: valid alone and in a batch
        var bodies = new JsonArray();
        foreach (var type in EventTypes.Publishable)
        {
            var body = new JsonObject { ["type"] = type, ["payload"] = Example(EventValidator.PayloadSchema(type)!) };
            Assert.True(EventValidator.Validate(type, Element(body["payload"]!)).Count == 0);
            Assert.True(Valid("ProducerEvent", body.ToJsonString()), $"{type}: {body.ToJsonString()}");
            bodies.Add(body);
        }

        Assert.True(Valid("ProducerEventBatch", bodies.ToJsonString()));
        Assert.False(Valid("ProducerEventBatch", "[]"));
        Assert.False(Valid("ProducerEventBatch", new JsonArray([.. Enumerable.Range(0, 101).Select(_ => bodies[0]!.DeepClone())]).ToJsonString()));
        Assert.False(Valid("ProducerEvent", """{"type":"build:progress"}"""));
        Assert.False(Valid("ProducerEvent", """{"type":"no:such:event","payload":{}}"""));
        Assert.False(Valid("ProducerEvent", """{"type":"agent:status:update","payload":{"agentId":"a","agentType":"robot","status":"working"}}"""));
        Assert.False(Valid("ProducerEvent", """{"type":"build:progress","payload":{"currentPhase":"design","phaseProgress":101,"overallProgress":1}}"""));

        Assert.True(Valid("BuildRequest", """{"requirements":"An online shop","simulate":true,"deploy":true,"speed":20,"faults":[{"kind":"transient","phase":"generate","agentType":"backend","count":2}]}"""));
        Assert.False(Valid("BuildRequest", """{"requirements":"","simulate":true}"""));
        Assert.False(Valid("BuildRequest", """{"requirements":"x","simulate":false}"""));
        Assert.False(Valid("BuildRequest", """{"requirements":"x","simulate":true,"speed":0}"""));
        Assert.False(Valid("BuildRequest", """{"requirements":"x","simulate":true,"faults":[{"kind":"sometimes","phase":"generate"}]}"""));
        Assert.True(Valid("DecisionRequest", """{"question":"Which layout?","options":[{"id":"a","label":"A"},{"id":"b","label":"B"}],"timeout":60,"defaultOptionId":"b"}"""));
        Assert.False(Valid("DecisionRequest", """{"question":"Which layout?","options":[]}"""));
        Assert.False(Valid("DecisionRequest", """{"question":"Which layout?","options":[{"id":"a","label":"A"}],"timeout":0}"""));

        // what a started gateway answers
        await using var gateway = await GatewayProcess.StartAsync();
        async Task<(HttpStatusCode Status, string Body)> SendAsync(HttpMethod method, string path, string? json = null)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add("X-Api-Key", GatewayProcess.ApiKey);
            if (json is not null)
            {
                request.Content = new StringContent(json, Encoding.UTF8, "application/json");
            }

            using var response = await gateway.Http.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var published = await SendAsync(HttpMethod.Post, "api/projects/schemas/events", bodies[0]!.ToJsonString());
        Assert.Equal(HttpStatusCode.Accepted, published.Status);
        Assert.True(Valid("EventEnvelope", published.Body), published.Body);
        // every publishable event in one batch (the examples' projectId is left out: the route names it)
        var batchBodies = (JsonArray)bodies.DeepClone();
        foreach (var body in batchBodies)
        {
            body!["payload"]!.AsObject().Remove("projectId");
        }

        var batch = await SendAsync(HttpMethod.Post, "api/projects/schemas/events", batchBodies.ToJsonString());
        Assert.True(batch.Status == HttpStatusCode.Accepted, batch.Body);
        Assert.True(Valid("EventEnvelopeBatch", batch.Body), batch.Body);
        var refused = await SendAsync(HttpMethod.Post, "api/projects/schemas/events", """{"type":"build:progress","payload":{"currentPhase":"nowhere"}}""");
        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.True(Valid("Error", refused.Body), refused.Body);
        var unauthorized = await gateway.Http.PostAsync("api/projects/schemas/events", new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        Assert.True(Valid("Error", await unauthorized.Content.ReadAsStringAsync()));

        var decision = await SendAsync(HttpMethod.Post, "api/projects/schemas/decisions", """{"question":"Which layout?","options":[{"id":"a","label":"A"}],"timeout":60}""");
        Assert.Equal(HttpStatusCode.Created, decision.Status);
        Assert.True(Valid("DecisionCreated", decision.Body), decision.Body);
        var decisionId = JsonNode.Parse(decision.Body)!["decisionId"]!.GetValue<string>();
        var status = await SendAsync(HttpMethod.Get, $"api/decisions/{decisionId}");
        Assert.Equal(HttpStatusCode.OK, status.Status);
        Assert.True(Valid("DecisionStatus", status.Body), status.Body);

        var build = await SendAsync(HttpMethod.Post, "api/projects/schemas-build/builds", """{"requirements":"An online shop","simulate":true,"speed":0.01}""");
        Assert.Equal(HttpStatusCode.Accepted, build.Status);
        Assert.True(Valid("BuildAccepted", build.Body), build.Body);
        var again = await SendAsync(HttpMethod.Post, "api/projects/schemas-build/builds", """{"requirements":"An online shop","simulate":true}""");
        Assert.Equal(HttpStatusCode.Conflict, again.Status);
        Assert.True(Valid("Error", again.Body), again.Body);
        var buildId = JsonNode.Parse(build.Body)!["buildId"]!.GetValue<string>();
        var cancelled = await SendAsync(HttpMethod.Post, $"api/projects/schemas-build/builds/{buildId}/cancel");
        Assert.Equal(HttpStatusCode.Accepted, cancelled.Status);
        Assert.True(Valid("BuildCancelled", cancelled.Body), cancelled.Body);
        var notRunning = await SendAsync(HttpMethod.Post, "api/projects/schemas-build/builds/build-unknown/cancel");
        Assert.Equal(HttpStatusCode.NotFound, notRunning.Status);
        Assert.True(Valid("Error", notRunning.Body), notRunning.Body);
    }
}
