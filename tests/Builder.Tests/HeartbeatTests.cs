using System.Text.Json;
using Builder.Tests.Infrastructure;
using SocketIOClient.Transport;

namespace Builder.Tests;

/// <summary>The document's heartbeat: <c>ping</c> (payload null) every IntervalSeconds, answered by <c>pong</c>.</summary>
public sealed class HeartbeatTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(TransportProtocol.WebSocket)]
    [InlineData(TransportProtocol.Polling)]
    public async Task Ping_every_interval_a_ponging_client_stays_a_silent_one_is_dropped_after_MaxMissed(TransportProtocol transport)
    {
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Heartbeat:IntervalSeconds"] = "30";
            s["Builder:Heartbeat:MaxMissed"] = "2";
        });
        await using var answering = gateway.Client(gateway.Token("alice", ["p1"]), transport);
        await using var silent = gateway.Client(gateway.Token("bob", ["p1"]), transport);
        await answering.ConnectAsync();
        await silent.ConnectAsync();

        // nothing before the interval has passed
        gateway.Time.Advance(Interval - TimeSpan.FromSeconds(1));
        await answering.BarrierAsync();
        await silent.BarrierAsync();
        Assert.Equal(0, answering.Pending("ping"));
        Assert.Equal(0, silent.Pending("ping"));
        gateway.Time.Advance(TimeSpan.FromSeconds(1));

        for (var beat = 1; beat <= 2; beat++)
        {
            var ping = await answering.NextAsync("ping");
            Assert.Equal(JsonValueKind.Null, ping.ValueKind);
            Assert.Equal(JsonValueKind.Null, (await silent.NextAsync("ping")).ValueKind);
            await answering.EmitAsync("pong", (object?)null!);

            // pong is handled before the barrier's ack: the next beat sees it
            await answering.BarrierAsync();
            await silent.BarrierAsync();
            Assert.True(silent.Connected, $"dropped after {beat} missed ping(s)");
            gateway.Time.Advance(Interval);
        }

        // third beat: the silent client has missed two pings and is disconnected; the other one is pinged again
        var error = await silent.NextAsync("error");
        Assert.Equal("HEARTBEAT_TIMEOUT", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.Equal("io server disconnect", await silent.Disconnected.WaitAsync(TestGateway.Wait));
        Assert.Equal(0, silent.Pending("ping"));

        Assert.Equal(JsonValueKind.Null, (await answering.NextAsync("ping")).ValueKind);
        await answering.EmitAsync("pong", (object?)null!);
        await answering.BarrierAsync();
        for (var beat = 0; beat < 3; beat++)
        {
            gateway.Time.Advance(Interval);
            await answering.NextAsync("ping");
            await answering.EmitAsync("pong", (object?)null!);
            await answering.BarrierAsync();
        }

        Assert.True(answering.Connected);
        Assert.Equal(0, answering.Pending("error"));
    }

    [Fact]
    public async Task Pong_is_accepted_without_an_error_and_without_a_payload()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.EmitAsync("pong");
        await client.EmitAsync("pong", (object?)null!);
        await client.BarrierAsync();
        Assert.Equal(0, client.Pending("error"));
    }

    [Fact]
    public async Task Ping_follows_the_configured_interval()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "5");
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        client.AnswerPings = true;
        await client.ConnectAsync();
        for (var i = 0; i < 4; i++)
        {
            gateway.Time.Advance(TimeSpan.FromSeconds(4));
            await client.BarrierAsync();
            Assert.Equal(0, client.Pending("ping"));
            gateway.Time.Advance(TimeSpan.FromSeconds(1));
            Assert.Equal(JsonValueKind.Null, (await client.NextAsync("ping")).ValueKind);
            await client.BarrierAsync();
        }

        Assert.True(client.Connected);
    }
}
