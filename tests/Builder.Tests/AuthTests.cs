using System.Text.Json;
using Builder.Tests.Infrastructure;
using SocketIOClient.Transport;

namespace Builder.Tests;

/// <summary>Handshake authentication, the <c>authenticate</c> event and token expiry on a live socket.</summary>
public sealed class AuthTests
{
    public static TheoryData<string, string> RefusedTokens => new()
    {
        { "missing", "TOKEN_MISSING" },
        { "empty", "TOKEN_MISSING" },
        { "alg-none", "TOKEN_INVALID" },
        { "wrong-signature", "TOKEN_INVALID" },
        { "tampered-payload", "TOKEN_INVALID" },
        { "malformed", "TOKEN_INVALID" },
        { "wrong-issuer", "TOKEN_INVALID" },
        { "wrong-audience", "TOKEN_INVALID" },
        { "expired", "TOKEN_EXPIRED" },
    };

    private static string? Craft(TestGateway gateway, string kind) => kind switch
    {
        "missing" => null,
        "empty" => string.Empty,
        "alg-none" => Tokens.Unsigned(gateway),
        "wrong-signature" => Tokens.WrongSignature(gateway),
        "tampered-payload" => Tokens.TamperedPayload(gateway),
        "malformed" => "not-a.jwt",
        "wrong-issuer" => Tokens.WrongIssuer(gateway),
        "wrong-audience" => Tokens.WrongAudience(gateway),
        "expired" => Tokens.Expired(gateway),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    [Theory]
    [MemberData(nameof(RefusedTokens))]
    public async Task Refused_token_gets_connect_error_with_its_code(string kind, string code)
    {
        await using var gateway = await TestGateway.StartAsync();
        var token = Craft(gateway, kind);

        // what err.message and err.data say (a hand-written polling client reads the packet whole)
        var error = await RawPolling.ConnectErrorAsync(gateway, token is null ? null : new { token });
        Assert.Equal("Authentication failed", error.GetProperty("message").GetString());
        Assert.Equal(code, error.GetProperty("data").GetProperty("code").GetString());

        // what a real client sees: connect_error, never connected, no event
        await using var client = gateway.Client(token);
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(client.ConnectOnlyAsync);
        Assert.Equal("connect_error: Authentication failed", ex.Message);
        Assert.False(client.Connected);
        Assert.Empty(client.DrainAll());
    }

    [Theory]
    [InlineData(TransportProtocol.WebSocket)]
    [InlineData(TransportProtocol.Polling)]
    public async Task Valid_token_is_answered_with_authenticated(TransportProtocol transport)
    {
        await using var gateway = await TestGateway.StartAsync();
        var raw = await RawPolling.ConnectAsync(gateway, new { token = gateway.Token("alice", ["p1"], username: "alice_doe") });
        Assert.StartsWith("40/builder,{\"sid\":", raw, StringComparison.Ordinal);

        await using var client = gateway.Client(gateway.Token("alice", ["p1"], username: "alice_doe"), transport);
        var authenticated = await client.ConnectAsync();
        Assert.Equal("alice", authenticated.GetProperty("userId").GetString());
        Assert.Equal("alice_doe", authenticated.GetProperty("username").GetString());
    }

    [Fact]
    public async Task Authenticate_event_with_a_fresh_token_replaces_the_identity_and_its_expiry()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        await using var client = gateway.Client(gateway.Token("alice", ["p1"], TimeSpan.FromMinutes(2)));
        await client.ConnectAsync();

        var ack = await client.EmitWithAckAsync("authenticate", new { token = gateway.Token("alice", ["p1", "p2"], TimeSpan.FromHours(2), username: "alice_renamed") });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        var again = await client.NextAsync("authenticated");
        Assert.Equal("alice", again.GetProperty("userId").GetString());
        Assert.Equal("alice_renamed", again.GetProperty("username").GetString());

        // the new token's projects apply
        await client.JoinAsync("p2");

        // the first token's expiry no longer applies: ten minutes later the socket is still up
        gateway.Time.Advance(TimeSpan.FromMinutes(10));
        await client.BarrierAsync();
        Assert.True(client.Connected);
        Assert.Equal(0, client.Pending("error"));

        // ...but the new token's does
        gateway.Time.Advance(TimeSpan.FromHours(2));
        var error = await client.NextAsync("error");
        Assert.Equal("TOKEN_EXPIRED", error.GetProperty("payload").GetProperty("code").GetString());
        await client.Disconnected.WaitAsync(TestGateway.Wait);
    }

    [Fact]
    public async Task Authenticate_event_with_a_bad_token_keeps_the_old_identity()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();

        var ack = await client.EmitWithAckAsync("authenticate", new { token = Tokens.WrongSignature(gateway) });
        Assert.False(ack.GetProperty("ok").GetBoolean());
        Assert.Equal("TOKEN_INVALID", ack.GetProperty("error").GetProperty("code").GetString());
        var error = await client.NextAsync("error");
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal("TOKEN_INVALID", error.GetProperty("payload").GetProperty("code").GetString());

        var expired = await client.EmitWithAckAsync("authenticate", new { token = Tokens.Expired(gateway) });
        Assert.Equal("TOKEN_EXPIRED", expired.GetProperty("error").GetProperty("code").GetString());

        var missing = await client.EmitWithAckAsync("authenticate", new { });
        Assert.Equal("TOKEN_MISSING", missing.GetProperty("error").GetProperty("code").GetString());

        await client.JoinAsync("p1");
        Assert.True(client.Connected);
        Assert.Equal(0, client.Pending("authenticated"));
    }

    [Fact]
    public async Task Authenticate_as_another_user_leaves_the_projects_that_user_may_not_see()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1", "shared"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        await client.JoinAsync("shared");
        client.DrainAll();

        var ack = await client.EmitWithAckAsync("authenticate", new { token = gateway.Token("bob", ["shared"]) });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        Assert.Equal("bob", (await client.NextAsync("authenticated")).GetProperty("userId").GetString());

        await gateway.PublishAsync("p1", "agent:status:update", new { agentId = "a1", agentType = "ui", status = "working" });
        await gateway.PublishAsync("shared", "agent:status:update", new { agentId = "a2", agentType = "ui", status = "idle" });
        var received = await client.NextAsync("agent:status:update");
        Assert.Equal("shared", received.GetProperty("projectId").GetString());
        await client.BarrierAsync();
        Assert.Equal(0, client.Pending("agent:status:update"));
    }

    [Fact]
    public async Task Authenticate_with_a_narrower_token_of_the_same_user_leaves_projects_no_longer_covered()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1", "p2"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        await client.JoinAsync("p2");

        // access to p2 was revoked: the refreshed token lists p1 only
        var ack = await client.EmitWithAckAsync("authenticate", new { token = gateway.Token("alice", ["p1"]) });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        await client.NextAsync("authenticated");
        client.DrainAll();

        await gateway.PublishAsync("p2", "agent:status:update", new { agentId = "a2", agentType = "ui", status = "working" });
        await gateway.PublishAsync("p1", "agent:status:update", new { agentId = "a1", agentType = "ui", status = "working" });
        var first = await client.NextAnyAsync();
        Assert.True(first.Data.GetProperty("projectId").GetString() == "p1", "an event of p2 still reached a socket whose token no longer covers p2: " + first);

        var join = await client.EmitWithAckAsync("join-project", new { projectId = "p2" });
        Assert.Equal("FORBIDDEN", join.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Socket_whose_token_expires_gets_TOKEN_EXPIRED_and_is_disconnected()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        await using var client = gateway.Client(gateway.Token("alice", ["p1"], TimeSpan.FromMinutes(5)));
        await client.ConnectAsync();
        await client.JoinAsync("p1");

        gateway.Time.Advance(TimeSpan.FromMinutes(4));
        await client.BarrierAsync();
        Assert.True(client.Connected);

        // past exp but within the accepted clock skew (Builder:Jwt:ClockSkewSeconds, 30 s): still valid,
        // as the handshake would accept it
        gateway.Time.Advance(TimeSpan.FromMinutes(1) + TimeSpan.FromSeconds(1));
        await client.BarrierAsync();
        Assert.True(client.Connected);

        gateway.Time.Advance(TimeSpan.FromSeconds(30));
        var error = await client.NextAsync("error");
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal(JsonValueKind.Number, error.GetProperty("timestamp").ValueKind);
        var payload = error.GetProperty("payload");
        Assert.Equal("TOKEN_EXPIRED", payload.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(payload.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.False, payload.GetProperty("recoverable").ValueKind);
        Assert.Equal(JsonValueKind.Array, payload.GetProperty("actions").ValueKind);

        var reason = await client.Disconnected.WaitAsync(TestGateway.Wait);
        Assert.Equal("io server disconnect", reason);
        Assert.False(client.Connected);
    }
}
