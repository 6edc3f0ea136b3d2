using System.Text.Json;
using Microsoft.Extensions.Time.Testing;

namespace SocketIO.Tests.Server;

/// <summary>
/// The Engine.IO heartbeat on a fake clock: a real server on 127.0.0.1 and a real client, with
/// <see cref="EngineIO.EngineIOOptions.TimeProvider"/> set to a <see cref="FakeTimeProvider"/>, so
/// time passes only when a test advances it (the timer callbacks then run inside Advance).
/// <para>
/// Absence of a ping is checked without a real-time window: the client emits an event the server
/// acknowledges ("sync"). A ping due before the event is queued inside Advance, before the event is
/// even sent, and the session writes its queue in order, so "the next frame is the ack" proves no
/// ping was queued; it also proves the session is still open, and that every packet the client sent
/// before it (a pong) was handled.
/// </para>
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class HeartbeatTests
{
    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan OneMs = TimeSpan.FromMilliseconds(1);

    private static Task<SioTestServer> StartAsync(FakeTimeProvider time) => SioTestServer.StartAsync(o =>
    {
        o.Engine.PingInterval = PingInterval;
        o.Engine.PingTimeout = PingTimeout;
        o.Engine.TimeProvider = time;
    });

    /// <summary>A WebSocket client joined to "/"; its server-side socket acks "sync" with its argument.</summary>
    private static async Task<(SioClient Client, SocketIOSocket Socket)> ConnectWebSocketAsync(SioTestServer server)
    {
        var (client, socket) = await server.ConnectAsync();
        socket.On("sync", ctx => ctx.Ack(ctx.GetArg<int>(0)));
        return (client, socket);
    }

    /// <summary>The next WebSocket frame as it comes: pings are not answered here.</summary>
    private static Task<string> NextFrameAsync(SioClient client) => client.Ws.ReceiveTextAsync(SioTestServer.Deadline);

    /// <summary>The sync barrier over WebSocket: the next frame must be the ack of this "sync", nothing before it.</summary>
    private static async Task SyncAsync(SioClient client, int n)
    {
        await client.SendAsync($"42{n}[\"sync\",{n}]");
        Assert.Equal($"43{n}[{n}]", await NextFrameAsync(client));
    }

    /// <summary>Opens a long-polling session and joins "/"; the server-side socket acks "sync".</summary>
    private static async Task<(string EngineSid, SocketIOSocket Socket)> ConnectPollingAsync(SioTestServer server)
    {
        var (status, open) = await server.GetAsync(string.Empty).WaitAsync(SioTestServer.Deadline);
        Assert.Equal(200, status);
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
        }

        Assert.Equal((200, "ok"), await PostAsync(server, engineSid, "40"));
        var connect = await PollAsync(server, engineSid);
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        using var reply = JsonDocument.Parse(connect[2..]);
        var socket = await server.SocketAsync(engineSid, reply.RootElement.GetProperty("sid").GetString()!);
        socket.On("sync", ctx => ctx.Ack(ctx.GetArg<int>(0)));
        return (engineSid, socket);
    }

    /// <summary>One GET; must answer 200; returns the payload (packets separated by 0x1E).</summary>
    private static async Task<string> PollAsync(SioTestServer server, string engineSid)
    {
        var (status, body) = await server.GetAsync($"&sid={engineSid}").WaitAsync(SioTestServer.Deadline);
        Assert.True(status == 200, $"GET answered {status}: {body}");
        return body;
    }

    private static Task<(int Status, string Body)> PostAsync(SioTestServer server, string engineSid, string payload) =>
        server.PostAsync($"&sid={engineSid}", payload).WaitAsync(SioTestServer.Deadline);

    /// <summary>The sync barrier over polling: the next GET must carry the ack of this "sync" and nothing else.</summary>
    private static async Task PollingSyncAsync(SioTestServer server, string engineSid, int n)
    {
        Assert.Equal((200, "ok"), await PostAsync(server, engineSid, $"42{n}[\"sync\",{n}]"));
        Assert.Equal($"43{n}[{n}]", await PollAsync(server, engineSid));
    }

    /// <summary>The first ping leaves exactly PingInterval after the open packet, not 1 ms earlier, and only once.</summary>
    [Fact]
    public async Task WebSocket_FirstPing_IsSentExactlyAfterPingInterval()
    {
        var time = new FakeTimeProvider();
        await using var server = await StartAsync(time);
        var (client, _) = await ConnectWebSocketAsync(server);
        await using var _c = client;

        time.Advance(PingInterval - OneMs);
        await SyncAsync(client, 1); // no ping yet

        time.Advance(OneMs);
        Assert.Equal("2", await NextFrameAsync(client));
        await SyncAsync(client, 2); // exactly one ping
    }

    /// <summary>
    /// A pong clears the outstanding ping: PingTimeout (and more) passes without a close, and the
    /// next ping is due PingInterval after the pong.
    /// </summary>
    [Fact]
    public async Task WebSocket_Pong_KeepsTheSessionOpen_AndTheNextPingFollowsAnIntervalLater()
    {
        var time = new FakeTimeProvider();
        await using var server = await StartAsync(time);
        var (client, socket) = await ConnectWebSocketAsync(server);
        await using var _c = client;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        time.Advance(PingInterval);
        Assert.Equal("2", await NextFrameAsync(client));
        await client.SendAsync("3");
        await SyncAsync(client, 1); // the pong was handled

        time.Advance(PingTimeout);
        await SyncAsync(client, 2);
        time.Advance(PingInterval - PingTimeout - OneMs); // 1 ms short of an interval after the pong
        await SyncAsync(client, 3);
        Assert.False(reason.IsSet, "the session closed although the ping was answered");
        Assert.True(socket.Connected);

        time.Advance(OneMs);
        Assert.Equal("2", await NextFrameAsync(client));
        await SyncAsync(client, 4);
    }

    /// <summary>
    /// An unanswered ping closes the session PingTimeout after it was sent (not 1 ms earlier): the
    /// client's connection ends and the server's disconnect reason is "ping timeout".
    /// </summary>
    [Fact]
    public async Task WebSocket_UnansweredPing_ClosesTheSessionAfterPingTimeout()
    {
        var time = new FakeTimeProvider();
        await using var server = await StartAsync(time);
        var (client, socket) = await ConnectWebSocketAsync(server);
        await using var _c = client;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        time.Advance(PingInterval);
        Assert.Equal("2", await NextFrameAsync(client));

        time.Advance(PingTimeout - OneMs);
        await SyncAsync(client, 1); // still open, no second ping
        Assert.False(reason.IsSet);

        time.Advance(OneMs);
        Assert.Equal("ping timeout", await reason.WaitAsync());
        // closed with a close frame, as the reference server does, not cut
        Assert.StartsWith("close frame 1000", await client.Ws.WaitForCloseAsync(SioTestServer.Deadline), StringComparison.Ordinal);
        Assert.Empty(client.Ws.DrainBufferedMessages());
        Assert.False(socket.Connected);
    }

    /// <summary>
    /// A pong nobody asked for re-arms the heartbeat: the ping then comes a full PingInterval after
    /// that pong, not PingInterval after the open packet.
    /// </summary>
    [Fact]
    public async Task WebSocket_UnsolicitedPong_PostponesTheNextPing()
    {
        var time = new FakeTimeProvider();
        await using var server = await StartAsync(time);
        var (client, socket) = await ConnectWebSocketAsync(server);
        await using var _c = client;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        var early = TimeSpan.FromMilliseconds(10);

        time.Advance(PingInterval - early);
        await client.SendAsync("3");
        await SyncAsync(client, 1); // the pong was handled

        time.Advance(early); // the first ping would have been due now
        await SyncAsync(client, 2);

        time.Advance(PingInterval - early - OneMs); // 1 ms short of an interval after the pong
        await SyncAsync(client, 3);

        time.Advance(OneMs);
        Assert.Equal("2", await NextFrameAsync(client));
        await SyncAsync(client, 4);
        Assert.False(reason.IsSet);
    }

    /// <summary>
    /// Over long-polling, the ping is queued PingInterval after the open packet and a GET picks it
    /// up; a POSTed pong keeps the session open across PingTimeout, and the next ping follows a
    /// full PingInterval after the pong.
    /// </summary>
    [Fact]
    public async Task Polling_PingIsPolled_AndAPostedPongKeepsTheSessionOpen()
    {
        var time = new FakeTimeProvider();
        await using var server = await StartAsync(time);
        var (sid, socket) = await ConnectPollingAsync(server);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        time.Advance(PingInterval - OneMs);
        await PollingSyncAsync(server, sid, 1); // no ping yet

        // a GET already waiting is answered by the ping
        var poll = PollAsync(server, sid);
        time.Advance(OneMs);
        Assert.Equal("2", await poll);

        Assert.Equal((200, "ok"), await PostAsync(server, sid, "3"));
        time.Advance(PingTimeout);
        await PollingSyncAsync(server, sid, 2); // open, no second ping
        time.Advance(PingInterval - PingTimeout - OneMs);
        await PollingSyncAsync(server, sid, 3);
        Assert.False(reason.IsSet, "the session closed although the ping was answered");

        time.Advance(OneMs);
        Assert.Equal("2", await PollAsync(server, sid));
        Assert.True(socket.Connected);
    }

    /// <summary>
    /// Over long-polling, a ping left without a pong closes the session PingTimeout after it was
    /// sent: reason "ping timeout", and the next GET is refused as an unknown session.
    /// </summary>
    [Fact]
    public async Task Polling_UnansweredPing_ClosesTheSessionAfterPingTimeout()
    {
        var time = new FakeTimeProvider();
        await using var server = await StartAsync(time);
        var (sid, socket) = await ConnectPollingAsync(server);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        time.Advance(PingInterval);
        Assert.Equal("2", await PollAsync(server, sid));

        time.Advance(PingTimeout - OneMs);
        await PollingSyncAsync(server, sid, 1); // still open
        Assert.False(reason.IsSet);

        time.Advance(OneMs);
        Assert.Equal("ping timeout", await reason.WaitAsync());
        var (status, body) = await server.GetAsync($"&sid={sid}").WaitAsync(SioTestServer.Deadline);
        Assert.Equal(400, status);
        Assert.Equal("{\"code\":1,\"message\":\"Session ID unknown\"}", body);
    }
}
