using EngineIO;
using Microsoft.Extensions.Time.Testing;
using SocketIO.Tests.Protocol;

namespace SocketIO.Tests.Server;

/// <summary>
/// A session that the server closes while an upgrade is under way, as the reference client sees
/// it: once it has <c>3probe</c> it pauses polling (no more GETs; a probe that fails while it waits
/// for its pending requests is ignored, and it then sits paused until its own ping timeout), so
/// the probe WebSocket is the only way left to tell it of the close. Found by the interop
/// scenario "reconnect" over polling, which timed out waiting for "disconnect" on a loaded machine.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class UpgradeCloseTests
{
    [Theory]
    [InlineData(EngineWebSocketMode.Framed, EngineCloseReasonKind.TransportError)]
    [InlineData(EngineWebSocketMode.Runtime, EngineCloseReasonKind.TransportError)]
    [InlineData(EngineWebSocketMode.Framed, EngineCloseReasonKind.ForcedClose)]
    [InlineData(EngineWebSocketMode.Runtime, EngineCloseReasonKind.PingTimeout)]
    public async Task SessionClosedAfterTheProbeAnswer_TheProbeWaitsForTheUpgrade_ThenIsClosedWithACloseFrame(EngineWebSocketMode mode, EngineCloseReasonKind reason)
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.WebSocketMode = mode);
        var (engineSid, socket) = await server.ConnectOverPollingAsync();
        var disconnected = new Signal<string>();
        socket.OnDisconnect(disconnected.Set);

        await using var ws = await RawWebSocket.ConnectAsync(server.WsUri($"&sid={engineSid}"));
        await ws.SendTextAsync("2probe");
        Assert.Equal("3probe", await ws.ReceiveTextAsync(SioTestServer.Deadline));
        // the client's last poll before it pauses: answered at once with a noop
        Assert.Equal((200, "6"), await server.GetAsync($"&sid={engineSid}"));

        // the session ends while the client waits for its pending requests to pause polling
        socket.Conn.Abort(reason);
        Assert.False(socket.Conn.IsOpen);
        Assert.Equal(reason.ToWireString(), await disconnected.WaitAsync());

        // the pause done, the client switches to the probe: it must learn of the close there
        await ws.SendTextAsync("5");
        Assert.Equal("close frame 1000 ", await ws.WaitForCloseAsync(SioTestServer.Deadline));
        Assert.Empty(ws.DrainBufferedMessages());

        // and polling stays closed: the session is gone
        var (status, body) = await server.GetAsync($"&sid={engineSid}");
        Assert.Equal(400, status);
        Assert.Contains("Session ID unknown", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(EngineWebSocketMode.Framed)]
    [InlineData(EngineWebSocketMode.Runtime)]
    public async Task SessionClosedAfterTheProbeAnswer_AClientThatNeverSendsTheUpgrade_IsCutAtTheUpgradeTimeout(EngineWebSocketMode mode)
    {
        var time = new FakeTimeProvider();
        await using var server = await SioTestServer.StartAsync(o =>
        {
            o.Engine.WebSocketMode = mode;
            o.Engine.TimeProvider = time;
        });
        var (engineSid, socket) = await server.ConnectOverPollingAsync();

        await using var ws = await RawWebSocket.ConnectAsync(server.WsUri($"&sid={engineSid}"));
        await ws.SendTextAsync("2probe");
        Assert.Equal("3probe", await ws.ReceiveTextAsync(SioTestServer.Deadline));
        socket.Conn.Abort(EngineCloseReasonKind.TransportError);

        // the probe waits for "5" no longer than an upgrade may take (the fake clock stands still
        // until now: the probe is still open, the close did not end it)
        Assert.False(ws.IsClosed);
        time.Advance(server.Io.Options.Engine.UpgradeTimeout);
        await ws.WaitForCloseAsync(SioTestServer.Deadline);
        Assert.Empty(ws.DrainBufferedMessages());
    }

    [Theory]
    [InlineData(EngineWebSocketMode.Framed)]
    [InlineData(EngineWebSocketMode.Runtime)]
    public async Task SessionClosedBeforeTheProbeAnswer_TheProbeIsDroppedUnanswered(EngineWebSocketMode mode)
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.WebSocketMode = mode);
        var (engineSid, socket) = await server.ConnectOverPollingAsync();

        // the client is still polling: it learns of the close there, the probe is of no use
        await using var ws = await RawWebSocket.ConnectAsync(server.WsUri($"&sid={engineSid}"));
        socket.Conn.Abort(EngineCloseReasonKind.TransportError);
        try
        {
            await ws.SendTextAsync("2probe");
        }
        catch (Exception ex) when (ex is System.Net.WebSockets.WebSocketException or OperationCanceledException or IOException)
        {
            // the probe was cut before the ping went out (a reset surfaces as any of these)
        }

        await ws.WaitForCloseAsync(SioTestServer.Deadline);
        Assert.Empty(ws.DrainBufferedMessages());
        Assert.Equal(400, (await server.GetAsync($"&sid={engineSid}")).Status);
    }
}
