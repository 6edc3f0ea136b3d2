using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>
/// What a client gets for its mistakes: the document's <c>error</c> event and an
/// <c>{ok:false, error}</c> ack, on a socket that stays connected and usable.
/// </summary>
public sealed class ClientMistakeTests
{
    private static void AssertErrorEnvelope(JsonElement error, string code)
    {
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Number, error.GetProperty("timestamp").ValueKind);
        var payload = error.GetProperty("payload");
        Assert.Equal(code, payload.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(payload.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.Object, payload.GetProperty("details").ValueKind);
        Assert.True(payload.GetProperty("recoverable").ValueKind is JsonValueKind.True or JsonValueKind.False);
        Assert.Equal(JsonValueKind.Array, payload.GetProperty("actions").ValueKind);
    }

    private static void AssertAckError(JsonElement ack, string code)
    {
        Assert.False(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        Assert.Equal(code, ack.GetProperty("error").GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(ack.GetProperty("error").GetProperty("message").GetString()));
    }

    private static List<string> Fields(JsonElement error) =>
        error.GetProperty("payload").GetProperty("details").GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("field").GetString()!).ToList();

    [Fact]
    public async Task Unknown_event_gets_UNKNOWN_EVENT_and_the_socket_stays()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();

        var ack = await client.EmitWithAckAsync("build:start-please", new { projectId = "p1" });
        AssertAckError(ack, "UNKNOWN_EVENT");
        var error = await client.NextAsync("error");
        AssertErrorEnvelope(error, "UNKNOWN_EVENT");
        Assert.Equal("build:start-please", error.GetProperty("payload").GetProperty("details").GetProperty("event").GetString());
        Assert.True(error.GetProperty("payload").GetProperty("recoverable").GetBoolean());

        // without an ack request: the error event alone
        await client.EmitAsync("join_project", new { projectId = "p1" });
        AssertErrorEnvelope(await client.NextAsync("error"), "UNKNOWN_EVENT");

        Assert.True(client.Connected);
        await client.JoinAsync("p1");
    }

    public static TheoryData<string, string, string[]> InvalidPayloads => new()
    {
        { "join-project", "{}", ["payload.projectId"] },
        { "join-project", "\"p1\"", ["payload"] },
        { "join-project", "{\"projectId\":42}", ["payload.projectId"] },
        { "join-project", "{\"projectId\":\"has spaces/and slashes\"}", ["payload.projectId"] },
        { "join-project", "{\"projectId\":\"p1\",\"lastSeq\":-1}", ["payload.lastSeq"] },
        { "join-project", "{\"projectId\":\"p1\",\"lastSeq\":\"7\"}", ["payload.lastSeq"] },
        { "join-project", "{\"lastSeq\":1.5}", ["payload.projectId", "payload.lastSeq"] },
        { "leave-project", "{}", ["payload.projectId"] },
        { "user:decision:response", "{}", ["payload.decisionId", "payload.selectedOptionId"] },
        { "user:decision:response", "{\"decisionId\":\"d\",\"selectedOptionId\":3,\"feedback\":false}", ["payload.selectedOptionId", "payload.feedback"] },
        { "user:decision:response", "[]", ["payload"] },
        { "authenticate", "\"a-token-not-in-an-object\"", ["token"] },
    };

    [Theory]
    [MemberData(nameof(InvalidPayloads))]
    public async Task Invalid_payload_gets_INVALID_PAYLOAD_naming_each_field(string eventName, string json, string[] fields)
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();

        var ack = await client.EmitWithAckAsync(eventName, JsonDocument.Parse(json).RootElement);
        AssertAckError(ack, "INVALID_PAYLOAD");
        var error = await client.NextAsync("error");
        AssertErrorEnvelope(error, "INVALID_PAYLOAD");
        Assert.Equal(fields.Order(StringComparer.Ordinal), Fields(error).Order(StringComparer.Ordinal));
        foreach (var field in fields)
        {
            Assert.Contains(field, error.GetProperty("payload").GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(fields.Order(StringComparer.Ordinal), ack.GetProperty("error").GetProperty("details").GetProperty("fields").EnumerateArray().Select(f => f.GetProperty("field").GetString()!).Order(StringComparer.Ordinal));

        // still connected, still usable
        Assert.True(client.Connected);
        await client.JoinAsync("p1");
        Assert.Equal(0, client.Pending("error"));
    }

    [Fact]
    public async Task Join_without_any_argument_gets_INVALID_PAYLOAD()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();

        await client.EmitAsync("join-project");
        var error = await client.NextAsync("error");
        AssertErrorEnvelope(error, "INVALID_PAYLOAD");
        Assert.Equal(["payload"], Fields(error));
        await client.JoinAsync("p1");
    }
}
