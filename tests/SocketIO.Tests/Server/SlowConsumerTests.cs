using System.Text.Json;

namespace SocketIO.Tests.Server;

/// <summary>
/// The slow-consumer policy: a polling client that stops polling lets its bounded send queue
/// (<c>MaxBufferedPackets</c>) fill up; a non-volatile packet then closes the session with
/// "transport error", a volatile one is dropped.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class SlowConsumerTests
{
    private const char RecordSeparator = '\u001e';

    /// <summary>Opens a polling session, joins "/" and drains the queue; the client then stops polling.</summary>
    private static async Task<(string EngineSid, SocketIOSocket Socket, string? Pid)> ConnectPollingClientAsync(SioTestServer server)
    {
        var (status, open) = await server.GetAsync("");
        Assert.Equal(200, status);
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
        }

        var post = await server.PostAsync($"&sid={engineSid}", "40");
        Assert.Equal((200, "ok"), post);
        var (pollStatus, connect) = await server.GetAsync($"&sid={engineSid}");
        Assert.Equal(200, pollStatus);
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        using var reply = JsonDocument.Parse(connect[2..]);
        var socket = await server.SocketAsync(engineSid, reply.RootElement.GetProperty("sid").GetString()!);
        Assert.Equal(0, socket.Conn.QueuedPackets);
        return (engineSid, socket, reply.RootElement.TryGetProperty("pid", out var pid) ? pid.GetString() : null);
    }

    private static void EnableRecoveryWithSmallQueue(SocketIOOptions o)
    {
        o.Engine.MaxBufferedPackets = 8;
        o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
    }

    /// <summary>Emits "first" and polls it: its offset is where the client's state stands.</summary>
    private static async Task<string> PollFirstOffsetAsync(SioTestServer server, string engineSid, SocketIOSocket socket)
    {
        socket.Emit("first");
        var (_, body) = await server.GetAsync($"&sid={engineSid}");
        var packet = TextPacket.Parse(body);
        Assert.Equal("first", packet.Payload[0].GetString());
        return packet.Payload[1].GetString()!;
    }

    [Fact]
    public async Task WithRecovery_TheEventThatOverflowedTheQueueIsReplayedOnReconnect()
    {
        await using var server = await SioTestServer.StartAsync(EnableRecoveryWithSmallQueue);
        var (engineSid, socket, pid) = await ConnectPollingClientAsync(server);
        Assert.NotNull(pid);
        var offset = await PollFirstOffsetAsync(server, engineSid, socket);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        // volatile events fill the queue (they are never stored), the next event overflows it
        for (var i = 0; i < 8; i++)
        {
            socket.Volatile.Emit("v", i);
        }

        socket.Emit("n", 1);
        Assert.Equal("transport error", await reason.WaitAsync());
        socket.Emit("n", 2);

        await using var client = await SioClient.OpenAsync(server);
        var sid = await client.ConnectAsync(auth: $"{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}");
        Assert.Equal(socket.Id, sid);
        for (var i = 1; i <= 2; i++)
        {
            var packet = TextPacket.Parse(await client.NextAsync());
            Assert.Equal("n", packet.Payload[0].GetString());
            Assert.Equal(i, packet.Payload[1].GetInt32());
        }
    }

    [Fact]
    public async Task WithRecovery_MoreMissedEventsThanTheQueueHolds_StartAFreshSessionInsteadOfOverflowingAgain()
    {
        await using var server = await SioTestServer.StartAsync(EnableRecoveryWithSmallQueue);
        var (engineSid, socket, pid) = await ConnectPollingClientAsync(server);
        Assert.NotNull(pid);
        var offset = await PollFirstOffsetAsync(server, engineSid, socket);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        socket.Join("room");

        for (var i = 0; i < 20; i++)
        {
            server.Io.To("room").Emit("n", i);
        }

        Assert.Equal("transport error", await reason.WaitAsync());

        // a backlog larger than the send queue cannot be replayed in one go (it would overflow the
        // queue again): the client gets a fresh session, sees recovered=false and resyncs itself
        await using var client = await SioClient.OpenAsync(server);
        var sid = await client.ConnectAsync(auth: $"{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}");
        Assert.NotEqual(socket.Id, sid);
        Assert.NotNull(client.Pid);
        Assert.NotEqual(pid, client.Pid);
        server.Io.Sockets.Sockets[sid].Emit("marker");
        var next = TextPacket.Parse(await client.NextAsync());
        Assert.Equal("marker", next.Payload[0].GetString());
    }

    [Fact]
    public async Task EventsOverTheByteBudget_CloseTheSession_AndTheirBacklogIsNotReplayedOverTheBudget()
    {
        // far fewer packets than MaxBufferedPackets, but more bytes than MaxBufferedBytes
        await using var server = await SioTestServer.StartAsync(o =>
        {
            o.Engine.MaxBufferedBytes = 4096;
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
        });
        var (engineSid, socket, pid) = await ConnectPollingClientAsync(server);
        Assert.NotNull(pid);
        var offset = await PollFirstOffsetAsync(server, engineSid, socket);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        socket.Join("room");
        var filler = new string('b', 1000);
        for (var i = 0; i < 10 && socket.Connected; i++)
        {
            server.Io.To("room").Emit("n", i, filler);
            Assert.True(socket.Conn.QueuedBytes <= 4096, $"{socket.Conn.QueuedBytes} bytes queued");
        }

        Assert.Equal("transport error", await reason.WaitAsync());
        for (var i = 0; i < 10; i++)
        {
            server.Io.To("room").Emit("n", 10 + i, filler); // missed while away
        }

        // replaying 20 KB into a 4 KB queue would overflow it at once: a fresh session instead
        await using var client = await SioClient.OpenAsync(server);
        var sid = await client.ConnectAsync(auth: $"{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}");
        Assert.NotEqual(socket.Id, sid);
        server.Io.Sockets.Sockets[sid].Emit("marker");
        var next = TextPacket.Parse(await client.NextAsync());
        Assert.Equal("marker", next.Payload[0].GetString());
    }

    [Fact]
    public async Task NonVolatileEvents_OverflowingTheQueue_CloseTheSessionWithTransportError()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.MaxBufferedPackets = 8);
        var (engineSid, socket, _) = await ConnectPollingClientAsync(server);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        for (var i = 0; i < 20; i++)
        {
            socket.Emit("n", i);
        }

        Assert.Equal("transport error", await reason.WaitAsync());
        Assert.False(socket.Connected);
        Assert.False(socket.Conn.IsOpen);
        Assert.Empty(server.Io.Sockets.Sockets);

        // the session is gone: a late poll is refused
        var (status, body) = await server.GetAsync($"&sid={engineSid}");
        Assert.Equal(400, status);
        Assert.Contains("\"code\":1", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VolatileEvents_OverflowingTheQueue_AreDroppedAndTheSessionStays()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.MaxBufferedPackets = 8);
        var (engineSid, socket, _) = await ConnectPollingClientAsync(server);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        for (var i = 0; i < 20; i++)
        {
            socket.Volatile.Emit("n", i);
        }

        Assert.True(socket.Connected);
        Assert.True(socket.Conn.IsOpen);
        Assert.Equal(8, socket.Conn.QueuedPackets);

        // the client polls again: the first 8 events, the other 12 were dropped
        var (status, body) = await server.GetAsync($"&sid={engineSid}");
        Assert.Equal(200, status);
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"42[\"n\",{i}]"), body.Split(RecordSeparator));

        // and the session goes on normally
        socket.Emit("after");
        var (afterStatus, afterBody) = await server.GetAsync($"&sid={engineSid}");
        Assert.Equal(200, afterStatus);
        Assert.Equal("42[\"after\"]", afterBody);
        Assert.False(reason.IsSet);
    }

    [Fact]
    public async Task VolatileBroadcast_ToASlowAndAFastClient_DropsOnlyForTheSlowOne()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.MaxBufferedPackets = 8);
        var (engineSid, slow, _) = await ConnectPollingClientAsync(server);
        var (fast, _) = await server.ConnectAsync();
        await using var _f = fast;

        // one at a time, so that the fast client's own queue never fills up
        for (var i = 0; i < 20; i++)
        {
            server.Io.Sockets.Volatile.Emit("n", i);
            await fast.ExpectAsync($"42[\"n\",{i}]");
        }

        Assert.True(slow.Connected);
        var (_, body) = await server.GetAsync($"&sid={engineSid}");
        Assert.Equal(8, body.Split(RecordSeparator).Length);
    }

    [Fact]
    public async Task Broadcast_ClosesOnlyTheSlowConsumer()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.MaxBufferedPackets = 8);
        var (_, slow, _) = await ConnectPollingClientAsync(server);
        var reason = new Signal<string>();
        slow.OnDisconnect(reason.Set);
        var (fast, fastSocket) = await server.ConnectAsync();
        await using var _f = fast;

        // one at a time, so that the fast client's own queue never fills up
        for (var i = 0; i < 20; i++)
        {
            server.Io.Emit("n", i);
            await fast.ExpectAsync($"42[\"n\",{i}]");
        }

        Assert.Equal("transport error", await reason.WaitAsync());
        Assert.True(fastSocket.Connected);
    }
}
