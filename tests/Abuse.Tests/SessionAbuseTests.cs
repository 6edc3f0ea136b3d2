using System.Net;
using System.Text;
using System.Text.Json;
using Xunit.Abstractions;

namespace Abuse.Tests;

/// <summary>
/// Sessions an attacker opens and leaves: handshakes that never connect a namespace, clients
/// that never read what the gateway sends them. Nothing may stay behind, and memory stays bounded.
/// </summary>
public sealed class SessionAbuseTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(60);

    /// <summary>
    /// 10 000 Engine.IO handshakes that never connect a namespace: beyond the per-address cap they
    /// are refused with a body naming the limit, and the ones accepted are closed at the connect
    /// timeout (issue 16, defect 5: they lived for ever on the main namespace).
    /// </summary>
    [Fact]
    public async Task Ten_thousand_handshakes_that_never_connect_a_namespace_leave_nothing_behind()
    {
        const int Handshakes = 10_000;
        const int Cap = 100; // Builder:Limits:MaxHandshakesPerAddress, its default
        await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["Builder:Limits:ConnectTimeoutSeconds"] = "3",
        });
        var before = await gateway.MetricAsync("process_resident_memory_bytes");
        var accepted = 0;
        var refused = 0;
        string? refusal = null;
        var attack = Parallel.ForEachAsync(Enumerable.Range(0, Handshakes), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (_, _) =>
        {
            using var response = await gateway.Http.GetAsync("socket.io/?EIO=4&transport=polling");
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.OK && body.StartsWith('0'))
            {
                Interlocked.Increment(ref accepted);
            }
            else
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
                Interlocked.Increment(ref refused);
                refusal ??= $"{(int)response.StatusCode} {body}";
            }
        });
        var growth = await gateway.PeakGrowthAsync(before, attack);
        var open = await gateway.MetricAsync("builder_engine_sessions");
        output.WriteLine($"accepted {accepted}, refused {refused} ({refusal}); sessions open right after: {open}; peak RSS growth {growth / 1e6:0.0} MB");

        Assert.True(accepted + refused == Handshakes);
        Assert.True(open <= Cap, $"{open} sessions open from one address with a cap of {Cap} handshakes");
        Assert.True(refused >= Handshakes - (Cap * 10), $"only {refused} of {Handshakes} handshakes were refused");
        Assert.Contains("address", refusal!, StringComparison.OrdinalIgnoreCase);

        await Deadline.UntilAsync(async () => await gateway.MetricAsync("builder_engine_sessions") == 0, Settle, "the sessions that never connected a namespace to be closed");
        Assert.True(growth < 200e6, $"the gateway grew {growth / 1e6:0.0} MB from {Handshakes} handshakes");

        // and the address may connect again once its sessions are gone
        using var again = await gateway.Http.GetAsync("socket.io/?EIO=4&transport=polling");
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    /// <summary>A Socket.IO connect to a namespace the gateway does not serve (the main one, `/`) is refused.</summary>
    [Fact]
    public async Task A_connect_to_a_namespace_that_is_not_served_is_refused()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        await using var ws = await RawWs.ConnectAsync(gateway.Port);
        Assert.NotNull(await ws.ReceiveAsync()); // open
        await ws.SendTextAsync("40");
        var reply = await ws.ReceiveAsync();
        Assert.NotNull(reply);
        var text = Encoding.UTF8.GetString(reply.Value.Payload);
        output.WriteLine(text);
        Assert.StartsWith("44", text, StringComparison.Ordinal);
    }

    /// <summary>
    /// Viewers that join a busy project and never read: each is cut off once its backlog passes the
    /// per-session byte budget, memory stays bounded, and a viewer that reads loses nothing.
    /// </summary>
    [Fact]
    public async Task Viewers_that_never_read_are_cut_off_and_memory_stays_bounded()
    {
        const int SlowReaders = 20;
        const int Events = 150;

        // the application heartbeat would cut them off after 60 s: let the send budget do it
        await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["Builder:Heartbeat:IntervalSeconds"] = "300",
        });
        var before = await gateway.MetricAsync("process_resident_memory_bytes");
        var slow = new List<RawWs>();
        for (var i = 0; i < SlowReaders; i++)
        {
            var ws = await RawWs.ConnectAsync(gateway.Port, receiveBuffer: 4096);
            slow.Add(ws);
            Assert.NotNull(await ws.ReceiveAsync()); // open
            await ws.SendTextAsync("40/builder," + JsonSerializer.Serialize(new { token = GatewayProcess.Token($"slow-{i}", "busy") }));
            Assert.NotNull(await ws.ReceiveAsync()); // connected
            await ws.SendTextAsync("42/builder,[\"join-project\",{\"projectId\":\"busy\"}]");
        }

        await using var reader = await BuilderRawClient.ConnectAsync(gateway.Port, GatewayProcess.Token("reader", "busy"));
        await reader.EmitWithAckAsync("join-project", new { projectId = "busy" }, TimeSpan.FromSeconds(30));
        await Deadline.UntilAsync(async () => await gateway.MetricAsync("builder_connected_sockets") == SlowReaders + 1, Settle, "every viewer connected");

        // 150 events of about 200 KB each: 30 MB per viewer if it were all kept
        var big = JsonSerializer.Serialize(new { agentId = "ui-1", agentType = "ui", status = "working", message = new string('m', 200_000) });
        var attack = Task.Run(async () =>
        {
            for (var e = 0; e < Events; e++)
            {
                using var response = await gateway.PublishAsync("busy", "agent:status:update", big);
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            }
        });
        var growth = await gateway.PeakGrowthAsync(before, attack);
        await Deadline.UntilAsync(() => reader.Count >= Events, Settle, "the reading viewer to get every event");
        Assert.Equal(Enumerable.Range(1, Events).Select(s => (long)s), reader.SeqsSnapshot());
        await Deadline.UntilAsync(async () => await gateway.MetricAsync("builder_connected_sockets") == 1, TimeSpan.FromSeconds(15), "the viewers that never read to be cut off (before any heartbeat or ping timeout could)");
        output.WriteLine($"peak RSS growth with {SlowReaders} viewers that never read: {growth / 1e6:0.0} MB ({growth / SlowReaders / 1e6:0.0} MB each)");
        Assert.True(growth / SlowReaders < 8e6, $"each viewer that never reads cost {growth / SlowReaders / 1e6:0.0} MB");
        foreach (var ws in slow)
        {
            await ws.DisposeAsync();
        }
    }
}
