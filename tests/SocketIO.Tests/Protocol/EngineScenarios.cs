namespace SocketIO.Tests.Protocol;

/// <summary>
/// Test bodies shared, word for word, by the Engine.IO v4 suite (run against /engine.io/) and the
/// "Engine.IO protocol" part of the Socket.IO v5 suite (run against /socket.io/).
/// </summary>
internal static class EngineScenarios
{
    // ---- handshake / HTTP long-polling ----

    public static async Task Polling_SuccessfullyOpensASession(ProtocolServerFixture f, string path)
    {
        var response = await f.GetAsync($"{path}?EIO=4&transport=polling");

        Assert.Equal(200, response.Status);

        ProtocolServerFixture.AssertOpenPacket(response.Body, ["websocket"]);
    }

    public static async Task Polling_FailsWithAnInvalidEioQueryParameter(ProtocolServerFixture f, string path)
    {
        var response = await f.GetAsync($"{path}?transport=polling");

        Assert.Equal(400, response.Status);

        var response2 = await f.GetAsync($"{path}?EIO=abc&transport=polling");

        Assert.Equal(400, response2.Status);
    }

    public static async Task Polling_FailsWithAnInvalidTransportQueryParameter(ProtocolServerFixture f, string path)
    {
        var response = await f.GetAsync($"{path}?EIO=4");

        Assert.Equal(400, response.Status);

        var response2 = await f.GetAsync($"{path}?EIO=4&transport=abc");

        Assert.Equal(400, response2.Status);
    }

    public static async Task Polling_FailsWithAnInvalidRequestMethod(ProtocolServerFixture f, string path)
    {
        var response = await f.PostAsync($"{path}?EIO=4&transport=polling", body: null);

        Assert.Equal(400, response.Status);

        var response2 = await f.SendAsync(new HttpRequestMessage(HttpMethod.Put, f.HttpUri($"{path}?EIO=4&transport=polling")));

        Assert.Equal(400, response2.Status);
    }

    // ---- handshake / WebSocket ----

    public static async Task WebSocket_SuccessfullyOpensASession(ProtocolServerFixture f, string path)
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{path}?EIO=4&transport=websocket"));

        var data = await socket.ReceiveTextAsync();

        ProtocolServerFixture.AssertOpenPacket(data, []);
    }

    public static async Task WebSocket_FailsWithAnInvalidEioQueryParameter(ProtocolServerFixture f, string path)
    {
        await RawWebSocket.ExpectCloseAsync(f.WsUri($"{path}?transport=websocket"));

        await RawWebSocket.ExpectCloseAsync(f.WsUri($"{path}?EIO=abc&transport=websocket"));
    }

    public static async Task WebSocket_FailsWithAnInvalidTransportQueryParameter(ProtocolServerFixture f, string path)
    {
        await RawWebSocket.ExpectCloseAsync(f.WsUri($"{path}?EIO=4"));

        await RawWebSocket.ExpectCloseAsync(f.WsUri($"{path}?EIO=4&transport=abc"));
    }

    // ---- heartbeat ----

    public static async Task Polling_SendsPingPongPackets(ProtocolServerFixture f, string path)
    {
        var sid = await f.InitLongPollingSessionAsync(path);

        for (var i = 0; i < 3; i++)
        {
            var pollResponse = await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");

            Assert.Equal(200, pollResponse.Status);

            Assert.Equal("2", pollResponse.Body);

            var pushResponse = await f.PostAsync($"{path}?EIO=4&transport=polling&sid={sid}", "3");

            Assert.Equal(200, pushResponse.Status);
        }
    }

    public static async Task Polling_ClosesTheSessionUponPingTimeout(ProtocolServerFixture f, string path)
    {
        var sid = await f.InitLongPollingSessionAsync(path);

        // deliberate, as in the suite: let the server's ping interval and ping timeout elapse without a pong
        await ProtocolServerFixture.SleepAsync(ProtocolServerFixture.PingInterval + ProtocolServerFixture.PingTimeout);

        var pollResponse = await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(400, pollResponse.Status);
    }

    public static async Task WebSocket_SendsPingPongPackets(ProtocolServerFixture f, string path)
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{path}?EIO=4&transport=websocket"));

        await socket.ReceiveAsync(); // handshake

        for (var i = 0; i < 3; i++)
        {
            var data = await socket.ReceiveTextAsync();

            Assert.Equal("2", data);

            await socket.SendTextAsync("3");
        }
    }

    public static async Task WebSocket_ClosesTheSessionUponPingTimeout(ProtocolServerFixture f, string path)
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{path}?EIO=4&transport=websocket"));

        await socket.WaitForCloseAsync(); // handshake, a ping nobody answers, then close
    }

    // ---- close ----

    public static async Task Polling_ForcefullyClosesTheSession(ProtocolServerFixture f, string path)
    {
        var sid = await f.InitLongPollingSessionAsync(path);

        var poll = f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");
        var push = f.PostAsync($"{path}?EIO=4&transport=polling&sid={sid}", "1");
        await Task.WhenAll(poll, push);
        var pollResponse = await poll;

        Assert.Equal(200, pollResponse.Status);

        Assert.Equal("6", pollResponse.Body);

        var pollResponse2 = await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(400, pollResponse2.Status);
    }

    public static async Task WebSocket_ForcefullyClosesTheSession(ProtocolServerFixture f, string path)
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{path}?EIO=4&transport=websocket"));

        await socket.ReceiveAsync(); // handshake

        await socket.SendTextAsync("1");

        await socket.WaitForCloseAsync();
    }

    // ---- upgrade (the parts common to both suites) ----

    /// <summary>initLongPollingSession, open the WebSocket with the sid, probe; returns after "3probe".</summary>
    public static async Task<(string Sid, RawWebSocket Socket)> ProbeUpgradeAsync(ProtocolServerFixture f, string path)
    {
        var sid = await f.InitLongPollingSessionAsync(path);

        var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{path}?EIO=4&transport=websocket&sid={sid}"));
        try
        {
            // send probe
            await socket.SendTextAsync("2probe");

            var probeResponse = await socket.ReceiveTextAsync();

            Assert.Equal("3probe", probeResponse);
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }

        return (sid, socket);
    }

    public static async Task IgnoresHttpRequestsWithSameSidAfterUpgrade(ProtocolServerFixture f, string path, bool echo)
    {
        var (sid, socket) = await ProbeUpgradeAsync(f, path);
        await using var upgrading = socket;
        await socket.SendTextAsync("5");

        // "5" and this request travel on two connections: a request that reaches the server
        // before "5" does is a poll of a session still upgrading, answered at once with a noop (as
        // the reference server does while it upgrades); once "5" is in, polling the sid is refused.
        // On Node.js's single loop the WebSocket's data is read first; here the two can cross.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        var pollResponse = await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");
        while (pollResponse.Status == 200 && DateTime.UtcNow < deadline)
        {
            Assert.Equal("6", pollResponse.Body);
            pollResponse = await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");
        }

        Assert.Equal(400, pollResponse.Status);

        if (echo)
        {
            await socket.SendTextAsync("4hello");

            var data = await socket.ReceiveTextAsync();

            Assert.Equal("4hello", data);
        }
    }

    public static async Task IgnoresWebSocketConnectionWithSameSidAfterUpgrade(ProtocolServerFixture f, string path, bool echo)
    {
        var (sid, socket) = await ProbeUpgradeAsync(f, path);
        await using var upgrading = socket;
        await socket.SendTextAsync("5");

        await RawWebSocket.ExpectCloseAsync(f.WsUri($"{path}?EIO=4&transport=websocket&sid={sid}"));

        if (echo)
        {
            await socket.SendTextAsync("4hello");

            var data = await socket.ReceiveTextAsync();

            Assert.Equal("4hello", data);
        }
    }
}
