using System.Net.Http.Headers;
using System.Text.Json;

namespace SocketIO.Tests.Protocol;

/// <summary>
/// Engine.IO behaviour beyond the official suite: error bodies, maxPayload, CORS, and packets
/// emitted while an upgrade is in progress.
/// </summary>
[Collection(ProtocolTestGroup.Name)]
public sealed class EngineIOExtraTests(ProtocolServerFixture f)
{
    private const string RS = ProtocolServerFixture.RecordSeparator;

    // ---- error bodies: HTTP 400 + {"code":N,"message":"..."} ----

    [Theory]
    [InlineData("/engine.io/", "?EIO=4&transport=abc")]
    [InlineData("/engine.io/", "?EIO=4")]
    [InlineData("/socket.io/", "?EIO=4&transport=abc")]
    [InlineData("/socket.io/", "?EIO=4")]
    public async Task Error_TransportUnknown(string path, string query)
    {
        var response = await f.GetAsync(path + query);

        AssertError(response, 0, "Transport unknown");
    }

    [Theory]
    [InlineData("/engine.io/")]
    [InlineData("/socket.io/")]
    public async Task Error_SessionIdUnknown(string path)
    {
        var poll = await f.GetAsync($"{path}?EIO=4&transport=polling&sid=doesnotexist0000000");
        AssertError(poll, 1, "Session ID unknown");

        var push = await f.PostAsync($"{path}?EIO=4&transport=polling&sid=doesnotexist0000000", "4hello");
        AssertError(push, 1, "Session ID unknown");
    }

    [Theory]
    [InlineData("/engine.io/", "POST")]
    [InlineData("/engine.io/", "PUT")]
    [InlineData("/socket.io/", "POST")]
    [InlineData("/socket.io/", "PUT")]
    public async Task Error_BadHandshakeMethod(string path, string method)
    {
        var response = await f.SendAsync(new HttpRequestMessage(new HttpMethod(method), f.HttpUri($"{path}?EIO=4&transport=polling")));

        AssertError(response, 2, "Bad handshake method");
    }

    [Theory]
    [InlineData("/engine.io/")]
    [InlineData("/socket.io/")]
    public async Task Error_BadRequest_WebSocketHandshakeWithoutUpgrade(string path)
    {
        // a plain HTTP GET (no Upgrade header) asking for the websocket transport
        var response = await f.GetAsync($"{path}?EIO=4&transport=websocket");

        AssertError(response, 3, "Bad request");
    }

    [Theory]
    [InlineData("/engine.io/")]
    [InlineData("/socket.io/")]
    public async Task Error_BadRequest_PollingOnAnUpgradedSession(string path)
    {
        var (sid, socket) = await EngineScenarios.ProbeUpgradeAsync(f, path);
        await using (socket)
        {
            await socket.SendTextAsync("5");

            // the upgrade is complete once the server answers something sent after "5" over the WebSocket
            if (path == "/engine.io/")
            {
                await socket.SendTextAsync("4hello");
                Assert.Equal("4hello", (await socket.ReceiveAnsweringPingsAsync()).Text);
            }
            else
            {
                await socket.SendTextAsync("40");
                Assert.StartsWith("40{", (await socket.ReceiveAnsweringPingsAsync()).Text, StringComparison.Ordinal);
            }

            var response = await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}");

            AssertError(response, 3, "Bad request");
        }
    }

    [Theory]
    [InlineData("/engine.io/", "?EIO=3&transport=polling")]
    [InlineData("/engine.io/", "?EIO=abc&transport=polling")]
    [InlineData("/engine.io/", "?transport=polling")]
    [InlineData("/engine.io/", "?EIO=5&transport=polling")]
    [InlineData("/socket.io/", "?EIO=3&transport=polling")]
    [InlineData("/socket.io/", "?transport=polling")]
    public async Task Error_UnsupportedProtocolVersion(string path, string query)
    {
        var response = await f.GetAsync(path + query);

        AssertError(response, 5, "Unsupported protocol version");
    }

    // ---- maxPayload ----

    [Fact]
    public async Task MaxPayload_PollingBodyOverMaxPayloadIsRejectedWith413()
    {
        var sid = await f.InitLongPollingSessionAsync("/engine.io/");

        var body = "4" + new string('a', 1_000_000); // 1 000 001 bytes > maxPayload 1 000 000
        var response = await f.PostAsync($"/engine.io/?EIO=4&transport=polling&sid={sid}", body);

        Assert.Equal(413, response.Status);
    }

    [Fact]
    public async Task MaxPayload_PollingBodyOfExactlyMaxPayloadIsAccepted()
    {
        var sid = await f.InitLongPollingSessionAsync("/engine.io/");

        var body = "4" + new string('a', 999_999); // exactly maxPayload bytes
        var response = await f.PostAsync($"/engine.io/?EIO=4&transport=polling&sid={sid}", body);

        Assert.Equal(200, response.Status);
        Assert.Equal("ok", response.Body);

        var echoed = await f.PollPacketsAsync("/engine.io/", sid, 1);
        Assert.Equal(body, echoed[0]);
    }

    // ---- CORS ----

    [Theory]
    [InlineData("/socket.io/")]
    [InlineData("/engine.io/")]
    public async Task Cors_PreflightGets204WithAllowOrigin(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Options, f.HttpUri($"{path}?EIO=4&transport=polling"));
        request.Headers.Add("Origin", "http://example.com");
        request.Headers.Add("Access-Control-Request-Method", "GET");

        var response = await f.SendAsync(request);

        Assert.Equal(204, response.Status);
        AssertAllowOrigin(response.Headers, "http://example.com");
    }

    [Theory]
    [InlineData("/socket.io/")]
    [InlineData("/engine.io/")]
    public async Task Cors_HandshakeWithOriginGetsAllowOrigin(string path)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, f.HttpUri($"{path}?EIO=4&transport=polling"));
        request.Headers.Add("Origin", "http://example.com");

        var response = await f.SendAsync(request);

        Assert.Equal(200, response.Status);
        ProtocolServerFixture.AssertOpenPacket(response.Body, ["websocket"]);
        AssertAllowOrigin(response.Headers, "http://example.com");
    }

    [Fact]
    public async Task Cors_ErrorResponseWithOriginGetsAllowOrigin()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, f.HttpUri("/socket.io/?EIO=4&transport=abc"));
        request.Headers.Add("Origin", "http://example.com");

        var response = await f.SendAsync(request);

        AssertError(response, 0, "Transport unknown");
        AssertAllowOrigin(response.Headers, "http://example.com");
    }

    // ---- upgrade: packets emitted while the upgrade is in progress ----

    [Fact]
    public async Task Upgrade_PacketEmittedDuringUpgradeIsFlushedOverWebSocket()
    {
        var (sid, socket) = await EngineScenarios.ProbeUpgradeAsync(f, "/engine.io/");
        await using (socket)
        {
            // the echo server answers this while the upgrade is pending and no poll is open: the
            // answer must wait in the buffer and then go out over the WebSocket
            var push = await f.PostAsync($"/engine.io/?EIO=4&transport=polling&sid={sid}", $"4during-upgrade{RS}4second");
            Assert.Equal(200, push.Status);
            Assert.Equal("ok", push.Body);

            await socket.SendTextAsync("5");

            Assert.Equal("4during-upgrade", (await socket.ReceiveAnsweringPingsAsync()).Text);
            Assert.Equal("4second", (await socket.ReceiveAnsweringPingsAsync()).Text);

            await socket.SendTextAsync("4after");
            Assert.Equal("4after", (await socket.ReceiveAnsweringPingsAsync()).Text);
        }
    }

    [Fact]
    public async Task Upgrade_BinaryPacketEmittedDuringUpgradeIsFlushedOverWebSocketAsBinaryFrame()
    {
        var (sid, socket) = await EngineScenarios.ProbeUpgradeAsync(f, "/engine.io/");
        await using (socket)
        {
            var push = await f.PostAsync($"/engine.io/?EIO=4&transport=polling&sid={sid}", "bAQIDBA==");
            Assert.Equal(200, push.Status);

            await socket.SendTextAsync("5");

            var message = await socket.ReceiveAnsweringPingsAsync();
            Assert.False(message.IsText, $"expected a binary frame, got {message}");
            Assert.Equal([1, 2, 3, 4], message.Binary);
        }
    }

    internal static void AssertError(HttpResult response, int code, string message)
    {
        Assert.True(response.Status == 400, $"expected HTTP 400 {{\"code\":{code}}}, got {response}");
        Assert.Equal("application/json", response.ContentHeaders.ContentType?.MediaType);
        using var json = JsonDocument.Parse(response.Body);
        ProtocolServerFixture.AssertKeys(json.RootElement, "code", "message");
        Assert.Equal(code, json.RootElement.GetProperty("code").GetInt32());
        Assert.Equal(message, json.RootElement.GetProperty("message").GetString());
    }

    private static void AssertAllowOrigin(HttpResponseHeaders headers, string origin)
    {
        Assert.True(headers.TryGetValues("Access-Control-Allow-Origin", out var values), "no Access-Control-Allow-Origin header");
        var value = Assert.Single(values);
        Assert.True(value == "*" || value == origin, $"Access-Control-Allow-Origin: {value}");
    }
}
