using System.Diagnostics.Metrics;
using System.Text.Json;

namespace SocketIO.Tests.Server;

/// <summary>
/// The meter <c>EngineIO</c>'s <c>engineio.send_queue.drops</c>: a full send queue counts each
/// dropped volatile packet (<c>outcome=dropped</c>) and the session it closes (<c>outcome=closed</c>).
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class SendQueueMetricsTests
{
    [Fact]
    public async Task Dropped_volatile_packets_and_a_closed_slow_consumer_are_counted()
    {
        using var drops = new DropCounter();
        await using var server = await SioTestServer.StartAsync(o => o.Engine.MaxBufferedPackets = 8);

        // 20 volatile packets to a client that does not poll: 8 queued, 12 dropped
        var volatileSocket = await ConnectPollingClientAsync(server);
        for (var i = 0; i < 20; i++)
        {
            volatileSocket.Volatile.Emit("n", i);
        }

        Assert.True(volatileSocket.Connected);
        Assert.Equal(12, drops.Dropped);
        Assert.Equal(0, drops.Closed);

        // a non-volatile one that finds the queue full closes the session: counted once
        var reason = new Signal<string>();
        volatileSocket.OnDisconnect(reason.Set);
        volatileSocket.Emit("n", 20);
        Assert.Equal("transport error", await reason.WaitAsync());
        Assert.Equal(1, drops.Closed);
        Assert.Equal(12, drops.Dropped);
    }

    private static async Task<SocketIOSocket> ConnectPollingClientAsync(SioTestServer server)
    {
        var (_, open) = await server.GetAsync("");
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
        }

        Assert.Equal((200, "ok"), await server.PostAsync($"&sid={engineSid}", "40"));
        var (_, connect) = await server.GetAsync($"&sid={engineSid}");
        using var reply = JsonDocument.Parse(connect[2..]);
        return await server.SocketAsync(engineSid, reply.RootElement.GetProperty("sid").GetString()!);
    }

    /// <summary>The measurements of engineio.send_queue.drops while it lives (the tests of this collection run one at a time).</summary>
    private sealed class DropCounter : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _dropped;
        private long _closed;

        public DropCounter()
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "EngineIO" && instrument.Name == "engineio.send_queue.drops")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "outcome")
                    {
                        Interlocked.Add(ref (string?)tag.Value == "closed" ? ref _closed : ref _dropped, value);
                    }
                }
            });
            _listener.Start();
        }

        public long Dropped => Interlocked.Read(ref _dropped);

        public long Closed => Interlocked.Read(ref _closed);

        public void Dispose() => _listener.Dispose();
    }
}
