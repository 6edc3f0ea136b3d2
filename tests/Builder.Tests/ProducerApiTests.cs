using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>POST /api/projects/{id}/events: producer credentials, validation, the stamped envelope.</summary>
public sealed class ProducerApiTests
{
    private static readonly object ValidEvent = new { type = "agent:status:update", payload = new { agentId = "a1", agentType = "ui", status = "working", progress = 10 } };

    private static Action<HttpRequestMessage> Bearer(string token) => r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(TestGateway gateway, string projectId, object body, Action<HttpRequestMessage>? credential)
    {
        using var response = await gateway.PublishRawAsync(projectId, body, credential ?? (_ => { }));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task Credentials_are_checked()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");

        var none = await SendAsync(gateway, "p1", ValidEvent, _ => { });
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Equal("TOKEN_MISSING", none.Body.GetProperty("error").GetProperty("code").GetString());

        var userToken = await SendAsync(gateway, "p1", ValidEvent, Bearer(gateway.Token("alice", ["p1"])));
        Assert.Equal(HttpStatusCode.Forbidden, userToken.Status);
        Assert.Equal("NOT_A_PRODUCER", userToken.Body.GetProperty("error").GetProperty("code").GetString());

        var otherProject = await SendAsync(gateway, "p1", ValidEvent, Bearer(gateway.Token("agent-7", ["p2"], role: "agent")));
        Assert.Equal(HttpStatusCode.Forbidden, otherProject.Status);
        Assert.Equal("FORBIDDEN", otherProject.Body.GetProperty("error").GetProperty("code").GetString());

        var forged = await SendAsync(gateway, "p1", ValidEvent, Bearer(Tokens.WrongSignature(gateway)));
        Assert.Equal(HttpStatusCode.Unauthorized, forged.Status);
        Assert.Equal("TOKEN_INVALID", forged.Body.GetProperty("error").GetProperty("code").GetString());

        var expiredAgent = await SendAsync(gateway, "p1", ValidEvent, Bearer(Tokens.Expired(gateway)));
        Assert.Equal(HttpStatusCode.Unauthorized, expiredAgent.Status);
        Assert.Equal("TOKEN_EXPIRED", expiredAgent.Body.GetProperty("error").GetProperty("code").GetString());

        var badKey = await SendAsync(gateway, "p1", ValidEvent, r => r.Headers.Add("X-Api-Key", "wrong-ingest-key-0123456789"));
        Assert.Equal(HttpStatusCode.Unauthorized, badKey.Status);
        Assert.Equal("INVALID_API_KEY", badKey.Body.GetProperty("error").GetProperty("code").GetString());

        var prefixKey = await SendAsync(gateway, "p1", ValidEvent, r => r.Headers.Add("X-Api-Key", TestGateway.ApiKey[..^1]));
        Assert.Equal(HttpStatusCode.Unauthorized, prefixKey.Status);

        // nothing refused reached the room
        await client.BarrierAsync();
        Assert.Equal(0, client.Pending("agent:status:update"));

        var agent = await SendAsync(gateway, "p1", ValidEvent, Bearer(gateway.Token("agent-7", ["p1"], role: "agent")));
        Assert.Equal(HttpStatusCode.Accepted, agent.Status);
        var service = await SendAsync(gateway, "p1", ValidEvent, Bearer(gateway.Token("orchestrator", ["*"], role: "service")));
        Assert.Equal(HttpStatusCode.Accepted, service.Status);
        var key = await SendAsync(gateway, "p1", ValidEvent, r => r.Headers.Add("X-Api-Key", TestGateway.ApiKey));
        Assert.Equal(HttpStatusCode.Accepted, key.Status);

        Assert.Equal([1L, 2L, 3L], new[] { agent, service, key }.Select(r => r.Body.GetProperty("seq").GetInt64()));
        for (var i = 1; i <= 3; i++)
        {
            Assert.Equal(i, (await client.NextAsync("agent:status:update")).GetProperty("seq").GetInt64());
        }
    }

    [Fact]
    public async Task Accepted_event_is_stamped_and_broadcast_as_the_same_envelope()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");

        var now = gateway.Time.GetUtcNow().ToUnixTimeMilliseconds();
        var envelopes = new List<JsonElement>();
        for (var i = 0; i < 3; i++)
        {
            envelopes.Add(await gateway.PublishAsync("p1", "build:progress", new { currentPhase = "design", phaseProgress = 10 * i, overallProgress = 5 * i, message = $"step {i}" }));
            gateway.Time.Advance(TimeSpan.FromSeconds(1));
        }

        var ids = new HashSet<string>();
        for (var i = 0; i < 3; i++)
        {
            var e = envelopes[i];
            Assert.Equal("build:progress", e.GetProperty("type").GetString());
            Assert.Equal(now + (i * 1000), e.GetProperty("timestamp").GetInt64());
            Assert.Equal("p1", e.GetProperty("projectId").GetString());
            Assert.Equal(i + 1, e.GetProperty("seq").GetInt64());
            Assert.True(ids.Add(e.GetProperty("eventId").GetString()!));
            var payload = e.GetProperty("payload");
            Assert.Equal("p1", payload.GetProperty("projectId").GetString());
            Assert.Equal("design", payload.GetProperty("currentPhase").GetString());
            Assert.Equal(10 * i, payload.GetProperty("phaseProgress").GetInt32());
            Assert.Equal($"step {i}", payload.GetProperty("message").GetString());

            var received = await client.NextAsync("build:progress");
            Assert.Equal(e.GetRawText(), received.GetRawText());
        }

        // seq is per project
        var other = await gateway.PublishAsync("p2", "build:progress", new { currentPhase = "design", phaseProgress = 1, overallProgress = 1 });
        Assert.Equal(1, other.GetProperty("seq").GetInt64());
    }

    public static TheoryData<string, string[]> InvalidBodies => new()
    {
        { """{"type":"agent:dance","payload":{}}""", ["type"] },
        { """{"type":"user:decision:required","payload":{}}""", ["type"] },
        { """{"payload":{}}""", ["type"] },
        { """{"type":"agent:status:update"}""", ["payload"] },
        { """{}""", ["type", "payload"] },
        { """{"type":"agent:status:update","payload":"working"}""", ["payload"] },
        { """{"type":"agent:status:update","payload":{"agentId":"a1","agentType":"frontend","status":"working"}}""", ["payload.agentType"] },
        { """{"type":"agent:status:update","payload":{"agentId":"a1","agentType":"ui","status":"sleeping"}}""", ["payload.status"] },
        { """{"type":"agent:status:update","payload":{"agentId":"a1","agentType":"ui","status":"working","progress":101}}""", ["payload.progress"] },
        { """{"type":"agent:status:update","payload":{"agentId":"a1","agentType":"ui","status":"working","progress":-1}}""", ["payload.progress"] },
        { """{"type":"agent:status:update","payload":{"agentId":"a1","agentType":"ui","status":"working","progress":"65"}}""", ["payload.progress"] },
        { """{"type":"agent:status:update","payload":{}}""", ["payload.agentId", "payload.agentType", "payload.status"] },
        { """{"type":"agent:output","payload":{"agentId":"a1","agentType":"database","output":[],"summary":""}}""", ["payload.output", "payload.summary"] },
        { """{"type":"agent:error","payload":{"agentId":"a1","agentType":"backend","error":{"code":"X"}}}""", ["payload.error.message", "payload.error.retryable"] },
        { """{"type":"agent:error","payload":{"agentId":"a1","agentType":"backend","error":{"code":"X","message":"m","retryable":true,"retryCount":1.5}}}""", ["payload.error.retryCount"] },
        { """{"type":"build:started","payload":{"estimatedDuration":-5,"phases":[]}}""", ["payload.estimatedDuration", "payload.phases"] },
        { """{"type":"build:started","payload":{"estimatedDuration":5,"phases":["analyze",3]}}""", ["payload.phases[1]"] },
        { """{"type":"build:progress","payload":{}}""", ["payload.currentPhase", "payload.phaseProgress", "payload.overallProgress"] },
        { """{"type":"build:progress","payload":{"currentPhase":"design","phaseProgress":100.5,"overallProgress":45}}""", ["payload.phaseProgress"] },
        { """{"type":"build:completed","payload":{"duration":1,"previewUrl":"http://x","stats":{"componentsGenerated":1}}}""", ["payload.stats.apiEndpointsCreated", "payload.stats.dataModelsCreated"] },
        { """{"type":"build:failed","payload":{"error":{"message":"m"}}}""", ["payload.error.phase"] },
        { """{"type":"build:failed","payload":{"projectId":"another-project","error":{"phase":"generate","message":"m"}}}""", ["payload.projectId"] },
        { """{"type":"deployment:progress","payload":{"deploymentId":"d1","environment":"test","stage":"shipping","progress":40}}""", ["payload.stage"] },
        { """{"type":"deployment:progress","payload":{"deploymentId":"d1","environment":"test","stage":"building","progress":140}}""", ["payload.progress"] },
        { """{"type":"deployment:success","payload":{"deploymentId":"d1"}}""", ["payload.environment", "payload.url", "payload.healthStatus", "payload.duration"] },
        { """{"type":"error","payload":{"code":"E","message":"m","recoverable":"yes","actions":[{"label":"Retry"}]}}""", ["payload.recoverable", "payload.actions[0].action"] },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Invalid_event_gets_400_naming_each_field(string body, string[] fields)
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        client.DrainAll();

        using var request = new HttpRequestMessage(HttpMethod.Post, "api/projects/p1/events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        using var response = await gateway.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{(int)response.StatusCode} {text}");
        var error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal("VALIDATION_FAILED", error.GetProperty("code").GetString());
        var named = error.GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("field").GetString()!).ToList();
        Assert.Equal(fields.Order(StringComparer.Ordinal), named.Order(StringComparer.Ordinal));
        Assert.All(error.GetProperty("fields").EnumerateArray(), f => Assert.False(string.IsNullOrEmpty(f.GetProperty("message").GetString())));

        // nothing was logged nor broadcast: the next valid event is seq 1
        var next = await gateway.PublishAsync("p1", "agent:status:update", new { agentId = "a1", agentType = "ui", status = "idle" });
        Assert.Equal(1, next.GetProperty("seq").GetInt64());
        var first = await client.NextAnyAsync();
        Assert.Equal("agent:status:update", first.Name);
    }

    [Theory]
    [InlineData("not json", 400, "INVALID_JSON")]
    [InlineData("", 400, "INVALID_JSON")]
    [InlineData("\"text\"", 400, "INVALID_JSON")]
    [InlineData("[1,2]", 400, "VALIDATION_FAILED")] // an array is a batch: its elements must be {type, payload}
    public async Task Unreadable_body_gets_400(string body, int status, string code)
    {
        await using var gateway = await TestGateway.StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/projects/p1/events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
        using var response = await gateway.Http.SendAsync(request);
        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(code, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Invalid_project_id_in_the_route_gets_400()
    {
        await using var gateway = await TestGateway.StartAsync();
        using var response = await gateway.PublishRawAsync("bad%20project", ValidEvent);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var fields = JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("field").GetString()).ToList();
        Assert.Equal(["projectId"], fields);
    }
}
