using System.Text.Json;
using Builder.Tests.Infrastructure;
using SocketIOClient.Transport;

namespace Builder.Tests;

/// <summary>
/// The document's heartbeat: <c>ping</c> (payload null) to every socket once per IntervalSeconds,
/// answered by <c>pong</c>. The sockets are served in slices (one every 250 ms, at most 120 per
/// interval), so that many sockets' pings are spread over the interval.
/// </summary>
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

        // one ping per socket and interval
        gateway.Time.Advance(Interval);
        for (var beat = 1; beat <= 2; beat++)
        {
            var ping = await answering.NextAsync("ping");
            Assert.Equal(JsonValueKind.Null, ping.ValueKind);
            Assert.Equal(JsonValueKind.Null, (await silent.NextAsync("ping")).ValueKind);
            await answering.BarrierAsync();
            await silent.BarrierAsync();
            Assert.Equal(0, answering.Pending("ping"));
            Assert.Equal(0, silent.Pending("ping"));
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
        // 5 s: 20 slices of 250 ms; the socket is pinged in its slice of every interval
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "5");
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        client.AnswerPings = true;
        await client.ConnectAsync();
        var pingedAt = new List<int>();
        for (var step = 1; step <= 80; step++)
        {
            gateway.Time.Advance(TimeSpan.FromMilliseconds(250));
            await client.BarrierAsync();
            for (var pending = client.Pending("ping"); pending > 0; pending--)
            {
                Assert.Equal(JsonValueKind.Null, (await client.NextAsync("ping")).ValueKind);
                pingedAt.Add(step);
            }
        }

        Assert.Equal(4, pingedAt.Count);
        Assert.True(pingedAt[0] <= 20, $"first ping after {pingedAt[0]} steps of 250 ms");
        Assert.All(pingedAt.Zip(pingedAt.Skip(1)), p => Assert.Equal(20, p.Second - p.First));
        Assert.True(client.Connected);
    }

    [Fact]
    public async Task The_pings_of_many_sockets_are_spread_over_the_interval()
    {
        // 24 sockets, interval 30 s (120 slices): counted per quarter of the interval, each socket
        // pinged exactly once; before the slices, all 24 left in one go at the end of the interval
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "30");
        var clients = new List<BuilderClient>();
        try
        {
            for (var i = 0; i < 24; i++)
            {
                var client = gateway.Client(gateway.Token($"user{i}", ["p1"]));
                clients.Add(client);
                await client.ConnectAsync();
            }

            var perQuarter = new int[4];
            for (var quarter = 0; quarter < 4; quarter++)
            {
                gateway.Time.Advance(Interval / 4);
                foreach (var client in clients)
                {
                    await client.BarrierAsync();
                    perQuarter[quarter] += client.Pending("ping");
                }

                foreach (var client in clients)
                {
                    while (client.Pending("ping") > 0)
                    {
                        await client.NextAsync("ping");
                    }
                }
            }

            Assert.Equal(24, perQuarter.Sum());
            Assert.True(perQuarter.Max() <= 18, $"pings per quarter of the interval: {string.Join(", ", perQuarter)}");
            Assert.All(clients, c => Assert.True(c.Connected));
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }
}
