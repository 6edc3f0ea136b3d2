using System.Net;
using System.Net.Http.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>Limits on what a client may send: event rate, event size, HTTP body size.</summary>
public sealed class ClientLimitsTests
{
    [Fact]
    public async Task Events_over_the_rate_limit_get_RATE_LIMITED_and_the_socket_stays_connected()
    {
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Limits:ClientEventsPerSecond"] = "1";
            s["Builder:Limits:ClientEventBurst"] = "3";
        });
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();

        // the bucket holds 3 events and refills on the gateway's (fake) clock, which stands still
        for (var i = 0; i < 3; i++)
        {
            Assert.True((await client.EmitWithAckAsync("leave-project", new { projectId = "p1" })).GetProperty("ok").GetBoolean());
        }

        var limited = await client.EmitWithAckAsync("leave-project", new { projectId = "p1" });
        Assert.False(limited.GetProperty("ok").GetBoolean());
        Assert.Equal("RATE_LIMITED", limited.GetProperty("error").GetProperty("code").GetString());
        var error = await client.NextAsync("error");
        Assert.Equal("RATE_LIMITED", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.True(error.GetProperty("payload").GetProperty("recoverable").GetBoolean());
        Assert.True(client.Connected);

        gateway.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.True((await client.EmitWithAckAsync("leave-project", new { projectId = "p1" })).GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task An_event_over_the_size_limit_gets_PAYLOAD_TOO_LARGE_and_the_socket_stays_connected()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxEventBytes"] = "1024");
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();

        var big = await client.EmitWithAckAsync("join-project", new { projectId = "p1", padding = new string('x', 5000) });
        Assert.False(big.GetProperty("ok").GetBoolean());
        Assert.Equal("PAYLOAD_TOO_LARGE", big.GetProperty("error").GetProperty("code").GetString());
        var error = await client.NextAsync("error");
        Assert.Equal("PAYLOAD_TOO_LARGE", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.True(client.Connected);
        Assert.True((await client.JoinAsync("p1")).GetProperty("ok").GetBoolean());
    }

    [Fact]
    public async Task An_http_body_over_the_limit_gets_413_naming_the_problem()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxEventBytes"] = "1024");
        using var response = await gateway.PublishRawAsync("p1", new
        {
            type = "agent:status:update",
            payload = new { agentId = "a", agentType = "ui", status = "working", message = new string('x', 10_000) },
        });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        Assert.Equal("PAYLOAD_TOO_LARGE", body.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Connections_over_the_per_user_limit_are_refused_until_one_closes()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxConnectionsPerUser"] = "2");
        var token = gateway.Token("alice", ["p1"]);
        var first = gateway.Client(token);
        await first.ConnectAsync();
        await using var second = gateway.Client(token);
        await second.ConnectAsync();

        var refused = await RawPolling.ConnectErrorAsync(gateway, new { token });
        Assert.Equal("Too many connections", refused.GetProperty("message").GetString());
        Assert.Equal("CONNECTION_LIMIT", refused.GetProperty("data").GetProperty("code").GetString());

        // another user is not affected
        Assert.StartsWith("40/builder,", await RawPolling.ConnectAsync(gateway, new { token = gateway.Token("bob", ["p1"]) }), StringComparison.Ordinal);

        // once a connection of alice is gone (the server learns it asynchronously), she may connect again
        await first.DisposeAsync();
        var deadline = DateTime.UtcNow + TestGateway.Wait;
        string answer;
        do
        {
            answer = await RawPolling.ConnectAsync(gateway, new { token });
        }
        while (!answer.StartsWith("40/builder,", StringComparison.Ordinal) && DateTime.UtcNow < deadline);

        Assert.StartsWith("40/builder,", answer, StringComparison.Ordinal);
    }
}
