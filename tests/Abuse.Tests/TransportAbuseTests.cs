using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Abuse.Tests;

/// <summary>
/// What an attacker can do to the gateway with bare sockets, before any credential: every test
/// runs against a started gateway process, is bounded in count and time, and reads the server's
/// memory and sessions from <c>/metrics</c> before and after.
/// </summary>
public sealed class TransportAbuseTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A client that never reads and floods pings: every ping wants a pong the client will not
    /// take. The gateway keeps at most the latest pong (issue 16, defect 1: it queued one per ping,
    /// +360 MB in 3 s).
    /// </summary>
    [Fact]
    public async Task A_ping_flood_from_a_client_that_never_reads_keeps_memory_bounded()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        var before = await gateway.MetricAsync("process_resident_memory_bytes");
        await using var ws = await RawWs.ConnectAsync(gateway.Port, receiveBuffer: 4096);

        // replies the client will not read (connects to a namespace that is not served) keep a
        // data write pending; then every ping wants a pong
        var connects = new List<byte>();
        for (var i = 0; i < 20_000; i++)
        {
            connects.AddRange(RawWs.Frame(0x1, Encoding.ASCII.GetBytes("40/not-served-" + new string('x', 100) + ",")));
        }

        var ping = RawWs.Frame(0x9, new byte[125]);
        var pings = new byte[ping.Length * 1000];
        for (var i = 0; i < 1000; i++)
        {
            ping.CopyTo(pings, i * ping.Length);
        }

        var sent = 0L;
        var attack = Task.Run(async () =>
        {
            var watch = Stopwatch.StartNew();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(6));
            try
            {
                await ws.SendRawAsync(connects.ToArray(), cts.Token);

                // at most 1.5 million pings or 4 s, whichever comes first
                while (sent < 1_500_000 && watch.Elapsed < TimeSpan.FromSeconds(4))
                {
                    await ws.SendRawAsync(pings, cts.Token);
                    sent += 1000;
                }
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                // the server stopped reading or closed: also a bounded outcome
            }
        });
        var growth = await gateway.PeakGrowthAsync(before, attack);
        output.WriteLine($"pings sent: {sent}, peak RSS growth: {growth / 1e6:0.0} MB");

        Assert.True(sent > 10_000, $"the attack hardly ran ({sent} pings): the test proves nothing");
        Assert.True(growth < 64e6, $"the gateway grew {growth / 1e6:0.0} MB under a ping flood of {sent} pings from one connection");
        using var health = await gateway.Http.GetAsync("healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        await ws.DisposeAsync();
        await gateway.NothingLeftBehindAsync(Settle);
    }

    /// <summary>Heads sent a byte at a time (slowloris): the gateway closes them at its request-head timeout.</summary>
    [Fact]
    public async Task Slowloris_heads_are_closed_at_the_request_head_timeout()
    {
        await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["Kestrel:Limits:RequestHeadersTimeout"] = "00:00:02",
        });
        var head = Encoding.ASCII.GetBytes($"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nX-Padding: {new string('a', 400)}");
        const int Connections = 100;
        var clients = new List<TcpClient>();
        try
        {
            for (var i = 0; i < Connections; i++)
            {
                var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, gateway.Port);
                await tcp.GetStream().WriteAsync(head.AsMemory(0, 20));
                clients.Add(tcp);
            }

            // dribble one byte per connection every 200 ms; stop at the deadline
            var watch = Stopwatch.StartNew();
            var closed = new bool[Connections];
            var offset = 20;
            while (closed.Contains(false) && watch.Elapsed < TimeSpan.FromSeconds(25))
            {
                for (var i = 0; i < Connections; i++)
                {
                    if (closed[i])
                    {
                        continue;
                    }

                    try
                    {
                        await clients[i].GetStream().WriteAsync(head.AsMemory(offset % head.Length, 1));
                        if (clients[i].Client.Poll(0, SelectMode.SelectRead) && clients[i].Available == 0)
                        {
                            closed[i] = true; // readable with nothing to read: the server closed
                        }
                        else if (clients[i].Available > 0)
                        {
                            var buffer = new byte[4096];
                            var n = clients[i].Client.Receive(buffer);
                            closed[i] = n == 0 || Encoding.ASCII.GetString(buffer, 0, n).Contains("408", StringComparison.Ordinal);
                        }
                    }
                    catch (Exception ex) when (ex is IOException or SocketException)
                    {
                        closed[i] = true;
                    }
                }

                offset++;
                await Task.Delay(200);
            }

            output.WriteLine($"closed {closed.Count(c => c)} of {Connections} in {watch.Elapsed.TotalSeconds:0.0} s");
            Assert.All(closed, Assert.True);
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"slow heads lived {watch.Elapsed.TotalSeconds:0.0} s with a 2 s head timeout");
            await gateway.NothingLeftBehindAsync(Settle);
        }
        finally
        {
            foreach (var c in clients)
            {
                c.Dispose();
            }
        }
    }

    /// <summary>A frame that claims more than the maximum payload is refused (1009) before its bytes are buffered.</summary>
    [Fact]
    public async Task An_oversized_frame_is_refused_with_1009_and_nothing_is_buffered()
    {
        await using var gateway = await GatewayProcess.StartAsync();
        var before = await gateway.MetricAsync("process_resident_memory_bytes");
        var sessions = await gateway.MetricAsync("builder_engine_sessions");
        for (var i = 0; i < 20; i++)
        {
            await using var ws = await RawWs.ConnectAsync(gateway.Port);
            var open = await ws.ReceiveAsync();
            Assert.NotNull(open);

            // the header of a 1 GB text frame, then 64 KB of it
            var header = RawWs.Frame(0x1, new byte[64 * 1024], claimedLength: 1L << 30);
            try
            {
                await ws.SendRawAsync(header);
            }
            catch (IOException)
            {
            }

            var close = await ws.ReceiveAsync();
            Assert.NotNull(close);
            Assert.True(close.Value.Opcode == 0x8, $"expected a close frame, got opcode {close.Value.Opcode}: {Encoding.UTF8.GetString(close.Value.Payload)}");
            Assert.Equal(1009, (close.Value.Payload[0] << 8) | close.Value.Payload[1]);
        }

        await Deadline.UntilAsync(async () => await gateway.MetricAsync("builder_engine_sessions") <= sessions, Settle, "the sessions of the oversized frames to end");
        var growth = await gateway.MetricAsync("process_resident_memory_bytes") - before;
        output.WriteLine($"RSS growth after 20 oversized frames: {growth / 1e6:0.0} MB");
        Assert.True(growth < 64e6, $"the gateway grew {growth / 1e6:0.0} MB from 20 refused frames");
    }

    /// <summary>A polling body over the maximum payload is refused with 413 and a body naming the limit.</summary>
    [Fact]
    public async Task An_oversized_polling_body_is_refused_with_413()
    {
        await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["Builder:Limits:ConnectTimeoutSeconds"] = "2",
        });
        var handshake = await gateway.Http.GetStringAsync("socket.io/?EIO=4&transport=polling");
        var sid = System.Text.Json.JsonDocument.Parse(handshake[1..]).RootElement.GetProperty("sid").GetString();
        var before = await gateway.MetricAsync("process_resident_memory_bytes");
        using var content = new ByteArrayContent(new byte[8_000_000]);
        content.Headers.ContentType = new("text/plain", "UTF-8");
        using var response = await gateway.Http.PostAsync($"socket.io/?EIO=4&transport=polling&sid={sid}", content);
        var body = await response.Content.ReadAsStringAsync();
        output.WriteLine($"{(int)response.StatusCode} {body}");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(body));
        var growth = await gateway.MetricAsync("process_resident_memory_bytes") - before;
        Assert.True(growth < 32e6, $"the gateway grew {growth / 1e6:0.0} MB from a refused 8 MB body");

        // the session, which never joined a namespace, ends at the connect timeout or its next poll
        using var poll = await gateway.Http.GetAsync($"socket.io/?EIO=4&transport=polling&sid={sid}");
        await gateway.NothingLeftBehindAsync(Settle);
    }

    /// <summary>Floods of events from an authenticated client are rate-limited; the gateway stays responsive and bounded.</summary>
    [Fact]
    public async Task An_event_flood_is_rate_limited_and_the_gateway_stays_responsive()
    {
        await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["Builder:Limits:ClientEventsPerSecond"] = "20",
            ["Builder:Limits:ClientEventBurst"] = "40",
        });
        var before = await gateway.MetricAsync("process_resident_memory_bytes");
        await using var ws = await RawWs.ConnectAsync(gateway.Port);
        Assert.NotNull(await ws.ReceiveAsync()); // open
        await ws.SendTextAsync("40/builder," + System.Text.Json.JsonSerializer.Serialize(new { token = GatewayProcess.Token("flooder", "p1") }));
        var errors = 0;
        var reader = Task.Run(async () =>
        {
            while (await ws.ReceiveAsync() is { } frame)
            {
                var text = Encoding.UTF8.GetString(frame.Payload);
                if (text.Contains("RATE_LIMITED", StringComparison.Ordinal))
                {
                    Interlocked.Increment(ref errors);
                }
                else if (text == "2")
                {
                    await ws.SendTextAsync("3");
                }
            }
        });

        var frameBytes = RawWs.Frame(0x1, Encoding.UTF8.GetBytes("42/builder,[\"join-project\",{\"projectId\":\"p1\"}]"));
        var batch = new byte[frameBytes.Length * 500];
        for (var i = 0; i < 500; i++)
        {
            frameBytes.CopyTo(batch, i * frameBytes.Length);
        }

        var slowest = TimeSpan.Zero;
        var attack = Task.Run(async () =>
        {
            for (var i = 0; i < 100; i++)
            {
                await ws.SendRawAsync(batch); // 50 000 events in all
            }
        });
        while (!attack.IsCompleted)
        {
            var watch = Stopwatch.StartNew();
            using var health = await gateway.Http.GetAsync("healthz");
            slowest = watch.Elapsed > slowest ? watch.Elapsed : slowest;
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            await Task.WhenAny(attack, Task.Delay(50));
        }

        await attack;

        // Each refused event is answered with an error frame: 50 000 of them. A reader that falls
        // more than the send queue's budget behind them (8192 packets or 4 MiB; under CI load the
        // test's own reader can) is a slow consumer, and the gateway closes its session. Both are
        // the gateway defending itself; which one happens depends on how fast this reader runs.
        await Deadline.UntilAsync(() => Volatile.Read(ref errors) > 1000 || reader.IsCompleted, Settle, "RATE_LIMITED errors for the flood, or the flooder's session closed");
        var cut = (await gateway.MetricsAsync()).Where(m => m.Key.StartsWith("engineio_send_queue_drops_total", StringComparison.Ordinal) && m.Key.Contains("closed", StringComparison.Ordinal)).Sum(m => m.Value);
        output.WriteLine($"rate-limited errors: {errors}, reader ended: {reader.IsCompleted}, sessions closed as slow consumers: {cut}");
        if (Volatile.Read(ref errors) <= 1000)
        {
            Assert.True(errors > 0 && cut >= 1, $"the flooder's session ended after {errors} RATE_LIMITED errors without being closed as a slow consumer");
        }

        var growth = await gateway.MetricAsync("process_resident_memory_bytes") - before;
        output.WriteLine($"slowest /healthz during the flood: {slowest.TotalMilliseconds:0} ms, RSS growth {growth / 1e6:0.0} MB");
        Assert.True(slowest < TimeSpan.FromSeconds(2), $"/healthz took {slowest.TotalMilliseconds:0} ms during the flood");
        Assert.True(growth < 100e6, $"the gateway grew {growth / 1e6:0.0} MB under an event flood");
        await ws.DisposeAsync();
        try
        {
            await reader;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
        {
            // the reader was cut off by the dispose
        }

        await gateway.NothingLeftBehindAsync(Settle);
    }
}
