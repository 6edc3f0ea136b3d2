namespace SocketIO.Tests.Protocol;

/// <summary>
/// Port of the official Engine.IO v4 protocol test suite
/// (docs/engine.io-protocol/v4-test-suite/test-suite.js), run against the raw Engine.IO echo server.
/// </summary>
[Collection(ProtocolTestGroup.Name)]
public sealed class EngineIOProtocolSuiteTests(ProtocolServerFixture f)
{
    private const string Path = "/engine.io/";
    private const string RS = ProtocolServerFixture.RecordSeparator;

    // ---- handshake / HTTP long-polling ----

    [Fact]
    public Task Handshake_Polling_SuccessfullyOpensASession() => EngineScenarios.Polling_SuccessfullyOpensASession(f, Path);

    [Fact]
    public Task Handshake_Polling_FailsWithAnInvalidEioQueryParameter() => EngineScenarios.Polling_FailsWithAnInvalidEioQueryParameter(f, Path);

    [Fact]
    public Task Handshake_Polling_FailsWithAnInvalidTransportQueryParameter() => EngineScenarios.Polling_FailsWithAnInvalidTransportQueryParameter(f, Path);

    [Fact]
    public Task Handshake_Polling_FailsWithAnInvalidRequestMethod() => EngineScenarios.Polling_FailsWithAnInvalidRequestMethod(f, Path);

    // ---- handshake / WebSocket ----

    [Fact]
    public Task Handshake_WebSocket_SuccessfullyOpensASession() => EngineScenarios.WebSocket_SuccessfullyOpensASession(f, Path);

    [Fact]
    public Task Handshake_WebSocket_FailsWithAnInvalidEioQueryParameter() => EngineScenarios.WebSocket_FailsWithAnInvalidEioQueryParameter(f, Path);

    [Fact]
    public Task Handshake_WebSocket_FailsWithAnInvalidTransportQueryParameter() => EngineScenarios.WebSocket_FailsWithAnInvalidTransportQueryParameter(f, Path);

    // ---- message / HTTP long-polling ----

    [Fact]
    public Task Message_Polling_SendsAndReceivesAPayloadContainingOnePlainTextPacket() =>
        PushThenPollAsync("4hello", "4hello");

    [Fact]
    public Task Message_Polling_SendsAndReceivesAPayloadContainingSeveralPlainTextPackets() =>
        PushThenPollAsync($"4test1{RS}4test2{RS}4test3", $"4test1{RS}4test2{RS}4test3");

    [Fact]
    public Task Message_Polling_SendsAndReceivesAPayloadContainingPlainTextAndBinaryPackets() =>
        PushThenPollAsync($"4hello{RS}bAQIDBA==", $"4hello{RS}bAQIDBA==");

    [Fact]
    public async Task Message_Polling_ClosesTheSessionUponInvalidPacketFormat()
    {
        var sid = await f.InitLongPollingSessionAsync(Path);

        try
        {
            var pushResponse = await f.PostAsync($"{Path}?EIO=4&transport=polling&sid={sid}", "abc");

            Assert.Equal(400, pushResponse.Status);
        }
        catch (HttpRequestException)
        {
            // as in the suite: the server may close the request abnormally
        }

        var pollResponse = await f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(400, pollResponse.Status);
    }

    [Fact]
    public async Task Message_Polling_ClosesTheSessionUponDuplicatePollRequests()
    {
        var sid = await f.InitLongPollingSessionAsync(Path);

        var first = f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}");
        var second = BurstAsync();
        await Task.WhenAll(first, second);
        var pollResponses = new[] { await first, await second };

        Assert.Equal(200, pollResponses[0].Status);

        Assert.Equal("1", pollResponses[0].Body);

        // the Node.js implementation uses HTTP 500 (Internal Server Error), but HTTP 400 seems more suitable
        Assert.Contains(pollResponses[1].Status, new[] { 400, 500 });

        var pollResponse = await f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(400, pollResponse.Status);

        async Task<HttpResult> BurstAsync()
        {
            // deliberate, as in the suite: stagger the duplicate poll by 5 ms so the first one is pending
            await ProtocolServerFixture.SleepAsync(5);
            return await f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}&t=burst");
        }
    }

    [Fact]
    public async Task Message_Polling_ClosesTheSessionUponCancelledPollingRequest()
    {
        var sid = await f.InitLongPollingSessionAsync(Path);
        using var controller = new CancellationTokenSource();

        var pending = f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}", controller.Token);

        // deliberate, as in the suite: give the poll 5 ms to reach the server before aborting it
        await ProtocolServerFixture.SleepAsync(5);

        await controller.CancelAsync();
        try
        {
            await pending;
        }
        catch (OperationCanceledException)
        {
            // the aborted poll
        }

        var pollResponse = await f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(400, pollResponse.Status);
    }

    // ---- message / WebSocket ----

    [Fact]
    public async Task Message_WebSocket_SendsAndReceivesAPlainTextPacket()
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket"));

        await socket.ReceiveAsync(); // handshake

        await socket.SendTextAsync("4hello");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("4hello", data);
    }

    [Fact]
    public async Task Message_WebSocket_SendsAndReceivesABinaryPacket()
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket"));

        await socket.ReceiveAsync(); // handshake

        await socket.SendBinaryAsync([1, 2, 3, 4]);

        var data = await socket.ReceiveAsync();

        Assert.False(data.IsText, $"expected a binary frame, got {data}");
        Assert.Equal([1, 2, 3, 4], data.Binary);
    }

    [Fact]
    public async Task Message_WebSocket_ClosesTheSessionUponInvalidPacketFormat()
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket"));

        await socket.ReceiveAsync(); // handshake

        await socket.SendTextAsync("abc");

        // stricter than the suite's "close" event: with a close frame, as the reference server
        // closes it, not a cut connection
        Assert.StartsWith("close frame 1000", await socket.WaitForCloseAsync(), StringComparison.Ordinal);
    }

    // ---- heartbeat ----

    [Fact]
    public Task Heartbeat_Polling_SendsPingPongPackets() => EngineScenarios.Polling_SendsPingPongPackets(f, Path);

    [Fact]
    public Task Heartbeat_Polling_ClosesTheSessionUponPingTimeout() => EngineScenarios.Polling_ClosesTheSessionUponPingTimeout(f, Path);

    [Fact]
    public Task Heartbeat_WebSocket_SendsPingPongPackets() => EngineScenarios.WebSocket_SendsPingPongPackets(f, Path);

    [Fact]
    public Task Heartbeat_WebSocket_ClosesTheSessionUponPingTimeout() => EngineScenarios.WebSocket_ClosesTheSessionUponPingTimeout(f, Path);

    // ---- close ----

    [Fact]
    public Task Close_Polling_ForcefullyClosesTheSession() => EngineScenarios.Polling_ForcefullyClosesTheSession(f, Path);

    [Fact]
    public Task Close_WebSocket_ForcefullyClosesTheSession() => EngineScenarios.WebSocket_ForcefullyClosesTheSession(f, Path);

    // ---- upgrade ----

    [Fact]
    public async Task Upgrade_SuccessfullyUpgradesFromPollingToWebSocket()
    {
        var (sid, socket) = await EngineScenarios.ProbeUpgradeAsync(f, Path);
        await using var upgrading = socket;

        var pollResponse = await f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(200, pollResponse.Status);

        Assert.Equal("6", pollResponse.Body); // "noop" packet to cleanly end the HTTP long-polling request

        // complete upgrade
        await socket.SendTextAsync("5");

        await socket.SendTextAsync("4hello");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("4hello", data);
    }

    [Fact]
    public Task Upgrade_IgnoresHttpRequestsWithSameSidAfterUpgrade() =>
        EngineScenarios.IgnoresHttpRequestsWithSameSidAfterUpgrade(f, Path, echo: true);

    [Fact]
    public Task Upgrade_IgnoresWebSocketConnectionWithSameSidAfterUpgrade() =>
        EngineScenarios.IgnoresWebSocketConnectionWithSameSidAfterUpgrade(f, Path, echo: true);

    private async Task PushThenPollAsync(string body, string expected)
    {
        var sid = await f.InitLongPollingSessionAsync(Path);

        var pushResponse = await f.PostAsync($"{Path}?EIO=4&transport=polling&sid={sid}", body);

        Assert.Equal(200, pushResponse.Status);

        Assert.Equal("ok", pushResponse.Body);

        var pollResponse = await f.GetAsync($"{Path}?EIO=4&transport=polling&sid={sid}");

        Assert.Equal(200, pollResponse.Status);

        Assert.Equal(expected, pollResponse.Body);
    }
}
