using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using ConformanceHost;
using EngineIO;

namespace SocketIO.Tests.Protocol;

/// <summary>
/// Requests the reference server (engine.io 6, Server.verify / handleUpgrade / onWebSocket and the
/// polling transport) answers in a way of its own, each checked against our answer: the audit of
/// docs/architecture.md ("Answers to unusual requests"). Run in every WebSocket mode (test.sh).
/// </summary>
[Collection(ProtocolTestGroup.Name)]
public sealed class ReferenceAnswersTests(ProtocolServerFixture f)
{
    public static TheoryData<string> Paths => new() { "/engine.io/", "/socket.io/" };

    // ---- WebSocket requests the reference accepts (101) and then closes ----

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task WebSocketForASessionThatHasUpgraded_Gets101ThenACloseFrame(string path)
    {
        var (sid, socket) = await EngineScenarios.ProbeUpgradeAsync(f, path);
        await using (socket)
        {
            await socket.SendTextAsync("5");
            await WaitUntilUpgradedAsync(path, sid);

            await AssertAcceptedThenClosedAsync($"{path}?EIO=4&transport=websocket&sid={sid}");

            // the upgraded session is not disturbed
            await socket.SendTextAsync("4hello");
            if (path == "/engine.io/")
            {
                Assert.Equal("4hello", (await socket.ReceiveAnsweringPingsAsync()).Text);
            }

            Assert.False(socket.IsClosed);
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task WebSocketForASessionThatIsUpgrading_Gets101ThenACloseFrame_AndTheFirstUpgradeCompletes(string path)
    {
        var (sid, socket) = await EngineScenarios.ProbeUpgradeAsync(f, path);
        await using (socket)
        {
            await AssertAcceptedThenClosedAsync($"{path}?EIO=4&transport=websocket&sid={sid}");

            await socket.SendTextAsync("5");
            await WaitUntilUpgradedAsync(path, sid);
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task WebSocketNamingThePollingTransport_Gets101ThenACloseFrame_AndThePollingSessionGoesOn(string path)
    {
        var sid = await f.InitLongPollingSessionAsync(path);

        await AssertAcceptedThenClosedAsync($"{path}?EIO=4&transport=polling&sid={sid}");
        await AssertAcceptedThenClosedAsync($"{path}?EIO=4&transport=polling");

        var push = await f.PostAsync($"{path}?EIO=4&transport=polling&sid={sid}", "1");
        Assert.Equal(200, push.Status);
    }

    // ---- WebSocket requests refused before the handshake: 400 whatever the reason ----

    [Theory]
    [InlineData("?EIO=4&transport=websocket&sid=doesnotexist0000000", 1)]
    [InlineData("?EIO=4&transport=abc", 0)]
    [InlineData("?EIO=3&transport=websocket", 5)]
    [InlineData("?transport=websocket", 5)]
    public async Task RefusedWebSocketRequest_Gets400AndTheErrorCode(string query, int code)
    {
        foreach (var path in new[] { "/engine.io/", "/socket.io/" })
        {
            await using var raw = await RawHandshake.SendAsync(f.Port, path + query);
            Assert.Equal(400, raw.Status);
            using var json = JsonDocument.Parse(raw.Body);
            Assert.Equal(code, json.RootElement.GetProperty("code").GetInt32());
        }
    }

    [Fact]
    public async Task AllowRequestRefusingAWebSocket_Gets400_AndAPollingHandshake403()
    {
        await using var server = await ConformanceServer.StartAsync(configure: o => o.Engine.AllowRequest = _ => ValueTask.FromResult<string?>("not you"));

        await using (var raw = await RawHandshake.SendAsync(server.Port, "/socket.io/?EIO=4&transport=websocket"))
        {
            Assert.Equal(400, raw.Status);
            Assert.Equal("{\"code\":4,\"message\":\"not you\"}", raw.Body);
        }

        // the reference checks AllowRequest before the protocol version
        using var http = new HttpClient();
        using var polling = await http.GetAsync(new Uri($"http://127.0.0.1:{server.Port}/socket.io/?EIO=3&transport=polling"));
        Assert.Equal(403, (int)polling.StatusCode);
        Assert.Equal("{\"code\":4,\"message\":\"not you\"}", await polling.Content.ReadAsStringAsync());
    }

    // ---- plain HTTP ----

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task UnknownSidNamingTheWebSocketTransport_IsAnUnknownSid(string path)
    {
        // the reference looks the session up before it compares the transports
        var response = await f.GetAsync($"{path}?EIO=4&transport=websocket&sid=doesnotexist0000000");

        EngineIOExtraTests.AssertError(response, 1, "Session ID unknown");
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task BinaryContentTypeOnAPollingPost_Gets400AndClosesTheSession(string path)
    {
        var sid = await f.InitLongPollingSessionAsync(path);
        using var request = new HttpRequestMessage(HttpMethod.Post, f.HttpUri($"{path}?EIO=4&transport=polling&sid={sid}"))
        {
            Content = new ByteArrayContent("4hello"u8.ToArray()),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");

        var response = await f.SendAsync(request);

        Assert.Equal(400, response.Status);
        Assert.Contains("application/octet-stream", response.Body, StringComparison.Ordinal);
        EngineIOExtraTests.AssertError(await f.GetAsync($"{path}?EIO=4&transport=polling&sid={sid}"), 1, "Session ID unknown");
    }

    [Fact]
    public async Task OptionsWithoutCors_IsCheckedAsAnyRequest()
    {
        await using var server = await ConformanceServer.StartAsync(configure: o => o.Engine.Cors = null);
        using var http = new HttpClient();

        using var handshake = new HttpRequestMessage(HttpMethod.Options, new Uri($"http://127.0.0.1:{server.Port}/socket.io/?EIO=4&transport=polling"));
        handshake.Headers.Add("Origin", "http://a.test");
        using var refused = await http.SendAsync(handshake);
        Assert.Equal(400, (int)refused.StatusCode);
        Assert.Equal("{\"code\":2,\"message\":\"Bad handshake method\"}", await refused.Content.ReadAsStringAsync());
        Assert.False(refused.Headers.Contains("Access-Control-Allow-Origin"));

        // with CORS (the fixture's server), the preflight is answered
        using var preflight = new HttpRequestMessage(HttpMethod.Options, f.HttpUri("/socket.io/?EIO=4&transport=polling"));
        preflight.Headers.Add("Origin", "http://a.test");
        var answered = await f.SendAsync(preflight);
        Assert.Equal(204, answered.Status);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task OtherMethodOnASession_Gets400(string path)
    {
        // the reference answers a bare 500; ours names the problem
        var sid = await f.InitLongPollingSessionAsync(path);
        var response = await f.SendAsync(new HttpRequestMessage(HttpMethod.Put, f.HttpUri($"{path}?EIO=4&transport=polling&sid={sid}")));

        EngineIOExtraTests.AssertError(response, 3, "Bad request");
    }

    // ---- helpers ----

    /// <summary>The session has moved to WebSocket: its polling requests are refused (transport mismatch).</summary>
    private async Task WaitUntilUpgradedAsync(string path, string sid)
    {
        var deadline = DateTime.UtcNow + ProtocolServerFixture.Deadline;
        while (true)
        {
            var poll = await f.PostAsync($"{path}?EIO=4&transport=polling&sid={sid}", "6");
            if (poll.Status == 400)
            {
                return;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the session did not upgrade in time: {poll}");
            await Task.Yield();
        }
    }

    private async Task AssertAcceptedThenClosedAsync(string pathAndQuery)
    {
        await using var raw = await RawHandshake.SendAsync(f.Port, pathAndQuery);
        Assert.True(raw.Status == 101, $"expected 101 then a close frame, got HTTP {raw.Status}: {raw.Body}");
        var (opcode, payload) = await raw.ReadFrameAsync();
        Assert.Equal(0x8, opcode);
        Assert.Empty(payload); // no status code, as ws's close()
    }

    /// <summary>A WebSocket handshake over a bare TCP connection, its answer read as bytes.</summary>
    private sealed class RawHandshake : IAsyncDisposable
    {
        private readonly TcpClient _client;
        private readonly NetworkStream _stream;
        private readonly List<byte> _pending = [];

        private RawHandshake(TcpClient client)
        {
            _client = client;
            _stream = client.GetStream();
        }

        public int Status { get; private set; }

        public string Body { get; private set; } = "";

        public static async Task<RawHandshake> SendAsync(int port, string pathAndQuery)
        {
            var client = new TcpClient();
            await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
            var raw = new RawHandshake(client);
            var key = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
            await raw._stream.WriteAsync(Encoding.ASCII.GetBytes(
                $"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"));
            await raw.ReadHeadAsync();
            return raw;
        }

        private async Task ReadHeadAsync()
        {
            int end;
            while ((end = IndexOf("\r\n\r\n"u8)) < 0)
            {
                await FillAsync();
            }

            var head = Encoding.ASCII.GetString([.. _pending[..end]]);
            _pending.RemoveRange(0, end + 4);
            Status = int.Parse(head.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
            if (Status == 101)
            {
                return;
            }

            var length = head.Split("\r\n").Where(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
                .Select(l => int.Parse(l["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture)).Single();
            while (_pending.Count < length)
            {
                await FillAsync();
            }

            Body = Encoding.UTF8.GetString([.. _pending[..length]]);
        }

        public async Task<(int Opcode, byte[] Payload)> ReadFrameAsync()
        {
            while (_pending.Count < 2)
            {
                await FillAsync();
            }

            var opcode = _pending[0] & 0x0F;
            var length = _pending[1] & 0x7F;
            Assert.True(length < 126, "a long frame where a close frame was expected");
            while (_pending.Count < 2 + length)
            {
                await FillAsync();
            }

            return (opcode, [.. _pending[2..(2 + length)]]);
        }

        private int IndexOf(ReadOnlySpan<byte> needle) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_pending).IndexOf(needle);

        private async Task FillAsync()
        {
            var buffer = new byte[4096];
            using var timeout = new CancellationTokenSource(ProtocolServerFixture.Deadline);
            var read = await _stream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                throw new EndOfStreamException("the server closed the connection");
            }

            _pending.AddRange(buffer.AsSpan(0, read));
        }

        public async ValueTask DisposeAsync()
        {
            await _stream.DisposeAsync();
            _client.Dispose();
        }
    }
}
