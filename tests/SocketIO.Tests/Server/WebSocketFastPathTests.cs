using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EngineIO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace SocketIO.Tests.Server;

/// <summary>
/// <see cref="WebSocketFastPathExtensions.AddEngineIOWebSocketFastPath"/>: the Engine.IO WebSocket
/// handshakes answered at the connection level, and everything else left to Kestrel's HTTP pipeline
/// from the same bytes. Each test checks what a client observes and whether the fast path took the
/// connection (<see cref="EngineIOServer.FastPathSessions"/>). Where the answer of the HTTP path is
/// the reference, the same bytes go to a second server without the fast path and the answers are
/// compared.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class WebSocketFastPathTests
{
    /// <summary>How long any single network step may take.</summary>
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private const string OpenQuery = "EIO=4&transport=websocket";

    // ---- 1. WebSocket-only Socket.IO clients ----

    [Fact]
    public async Task WebSocketOnlyClient_IsServedByTheFastPath_WithEventsAcksAndItsHandshakeData()
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;

        await using var client = await WsClient.ConnectAsync(host.WsUri("&foo=bar"), new Dictionary<string, string> { ["x-test"] = "42" });
        var open = await client.ReceiveTextAsync();
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
            Assert.Equal(0, json.RootElement.GetProperty("upgrades").GetArrayLength());
            Assert.Equal(25000, json.RootElement.GetProperty("pingInterval").GetInt32());
        }

        Assert.Equal(before + 1, host.FastPathSessions);

        await client.SendAsync("40");
        var socket = await host.SocketAsync(engineSid, await client.ConnectReplyAsync());
        Assert.Equal(EngineIOOptions.WebSocket, socket.Conn.Transport);
        Assert.Equal("bar", socket.Handshake.Query["foo"]);
        Assert.Equal("4", socket.Handshake.Query["EIO"]);
        Assert.Equal("42", socket.Handshake.Headers["x-test"]);
        Assert.NotNull(socket.Handshake.Address);
        Assert.True(IPAddress.IsLoopback(socket.Handshake.Address!), $"address {socket.Handshake.Address}");
        Assert.Equal("/socket.io/?EIO=4&transport=websocket&foo=bar", socket.Handshake.Url);
        Assert.False(socket.Handshake.Secure);

        // client -> server event with an ack
        var notes = new Signal<string>();
        socket.On("add", ctx => ctx.Ack("sum", ctx.GetArg<int>(0) + ctx.GetArg<int>(1)));
        socket.On("note", ctx => notes.Set(ctx.GetArg<string>(0)!));
        await client.SendAsync("421[\"add\",40,2]");
        Assert.Equal("431[\"sum\",42]", await client.NextAsync());
        await client.SendAsync("42[\"note\",\"hello\"]");
        Assert.Equal("hello", await notes.WaitAsync());

        // server -> client event, and one with an ack
        socket.Emit("greet", "you", 1);
        Assert.Equal("42[\"greet\",\"you\",1]", await client.NextAsync());
        var pending = socket.EmitWithAckAsync("question", [7], Deadline);
        var packet = TextPacket.Parse(await client.NextAsync());
        Assert.Equal(2, packet.Type);
        Assert.Equal("[\"question\",7]", packet.Json);
        await client.SendAsync($"43{packet.Id}[\"answer\",8]");
        var ack = await pending.WaitAsync(Deadline);
        Assert.Equal("answer", ack.GetArg<string>(0));
        Assert.Equal(8, ack.GetArg<int>(1));

        Assert.Equal(before + 1, host.FastPathSessions);
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task FramesSentInTheSameWriteAsTheHead_AreLeftForTheWebSocket()
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;

        // the head and the CONNECT packet in one write: the fast path must consume the head only
        await using var raw = await RawConn.ConnectAsync(host.Port);
        var key = NewKey();
        var head = Encoding.ASCII.GetBytes(HandshakeHead(host.Port, OpenQuery, key));
        await raw.SendAsync([.. head, .. RawConn.MaskedFrame(RawConn.OpText, "40"u8.ToArray())]);
        var response = await raw.ReadResponseAsync();
        AssertSwitched(response, key);
        var engineSid = SidOf(await raw.ReadTextAsync());
        Assert.Equal(before + 1, host.FastPathSessions);

        var reply = await raw.ReadTextAsync();
        Assert.StartsWith("40{", reply, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(reply[2..]);
        var socket = await host.SocketAsync(engineSid, json.RootElement.GetProperty("sid").GetString()!);
        socket.Emit("e", 1);
        Assert.Equal("42[\"e\",1]", await raw.ReadTextAsync());
    }

    [Fact]
    public async Task Handshake_CarriesTheSameDataAsOverTheHttpPath()
    {
        await using var fast = await Host.StartAsync();
        await using var plain = await Host.StartAsync(fastPath: false);
        const string Extra = "Origin: http://o.test\r\nx-lower: v\r\nX-Dup: a\r\nX-Dup: b\r\nX-Spaces:   padded value  \r\n";
        const string Query = OpenQuery + "&foo=bar&foo=baz&e=%20x&empty=";
        const string Key = "dGhlIHNhbXBsZSBub25jZQ==";

        var seen = new List<Handshake>();
        foreach (var host in new[] { fast, plain })
        {
            var before = host.FastPathSessions;
            await using var raw = await RawConn.ConnectAsync(host.Port);
            // the same Host header for both servers
            await raw.SendAsync(HandshakeHead(host.Port, Query, Key, Extra).Replace($"127.0.0.1:{host.Port}", "example.test", StringComparison.Ordinal));
            AssertSwitched(await raw.ReadResponseAsync(), Key);
            var engineSid = SidOf(await raw.ReadTextAsync());
            await raw.SendTextAsync("40");
            var reply = await raw.ReadTextAsync();
            using var json = JsonDocument.Parse(reply[2..]);
            seen.Add((await host.SocketAsync(engineSid, json.RootElement.GetProperty("sid").GetString()!)).Handshake);
            Assert.Equal(host == fast ? before + 1 : before, host.FastPathSessions);
        }

        var (viaFast, viaHttp) = (seen[0], seen[1]);
        Assert.True(Describe(viaHttp.Headers) == Describe(viaFast.Headers), "HTTP:\n" + Describe(viaHttp.Headers) + "\nFAST:\n" + Describe(viaFast.Headers));
        Assert.Equal(Describe(viaHttp.Query), Describe(viaFast.Query));
        Assert.Equal(viaHttp.Url, viaFast.Url);
        Assert.Equal(viaHttp.Address, viaFast.Address);
        Assert.Equal(viaHttp.Secure, viaFast.Secure);

        static string Describe(IReadOnlyDictionary<string, string> values) =>
            string.Join("\n", values.OrderBy(p => p.Key, StringComparer.OrdinalIgnoreCase).Select(p => $"{p.Key.ToLowerInvariant()}={p.Value}"));
    }

    // ---- 2. polling and upgrades stay with Kestrel ----

    [Fact]
    public async Task PollingSession_AndItsUpgradeToWebSocket_GoThroughKestrel_AndWork()
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;

        var (status, open) = await host.GetAsync(host.PollingUri(string.Empty));
        Assert.Equal(200, status);
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
            Assert.Equal("websocket", json.RootElement.GetProperty("upgrades")[0].GetString());
        }

        Assert.Equal((200, "ok"), await host.PostAsync(host.PollingUri($"&sid={engineSid}"), "40"));
        var (_, connect) = await host.GetAsync(host.PollingUri($"&sid={engineSid}"));
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        using var reply = JsonDocument.Parse(connect[2..]);
        var socket = await host.SocketAsync(engineSid, reply.RootElement.GetProperty("sid").GetString()!);
        Assert.Equal(EngineIOOptions.Polling, socket.Conn.Transport);
        Assert.Equal(before, host.FastPathSessions);

        // the upgrade carries a sid: Kestrel's path
        await using var ws = await WsClient.ConnectAsync(host.WsUri($"&sid={engineSid}"));
        await ws.SendAsync("2probe");
        Assert.Equal("3probe", await ws.ReceiveTextAsync());
        await ws.SendAsync("5");

        var received = new Signal<int>();
        socket.On("up", ctx => received.Set(ctx.GetArg<int>(0)));
        await ws.SendAsync("42[\"up\",2]");
        Assert.Equal(2, await received.WaitAsync());
        Assert.Equal(EngineIOOptions.WebSocket, socket.Conn.Transport);
        socket.Emit("down", 3);
        Assert.Equal("42[\"down\",3]", await ws.NextAsync());
        Assert.Equal(before, host.FastPathSessions);
        Assert.True(socket.Connected);
    }

    // ---- 3. other routes ----

    [Fact]
    public async Task OrdinaryRoute_IsServedByKestrel_TwiceOnOneKeepAliveConnection()
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;

        var connects = 0;
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            MaxConnectionsPerServer = 1,
            ConnectCallback = async (context, ct) =>
            {
                Interlocked.Increment(ref connects);
                var s = new System.Net.Sockets.Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await s.ConnectAsync(context.DnsEndPoint, ct);
                    return new NetworkStream(s, ownsSocket: true);
                }
                catch
                {
                    s.Dispose();
                    throw;
                }
            },
        };
        using var http = new HttpClient(handler) { Timeout = Deadline };
        for (var i = 0; i < 2; i++)
        {
            using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{host.Port}/hello"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("hi", await response.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, connects);
        Assert.Equal(before, host.FastPathSessions);
    }

    [Fact]
    public async Task WebSocketHandshake_AsTheSecondRequestOfAConnection_GoesThroughKestrel_AndWorks()
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;

        await using var raw = await RawConn.ConnectAsync(host.Port);
        await raw.SendAsync($"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:{host.Port}\r\n\r\n");
        var hello = await raw.ReadResponseAsync();
        Assert.Equal(200, hello.Status);
        Assert.Equal("hi", hello.Body);

        var key = NewKey();
        await raw.SendAsync(HandshakeHead(host.Port, OpenQuery, key));
        AssertSwitched(await raw.ReadResponseAsync(), key);
        var engineSid = SidOf(await raw.ReadTextAsync());
        await raw.SendTextAsync("40");
        Assert.StartsWith("40{", await raw.ReadTextAsync(), StringComparison.Ordinal);
        Assert.True(host.Io.Engine.SessionCount >= 1, engineSid);
        Assert.Equal(before, host.FastPathSessions);
    }

    [Theory]
    [InlineData(EngineWebSocketMode.Framed)]
    [InlineData(EngineWebSocketMode.Runtime)]
    public async Task OtherWebSocketModes_TurnTheFastPathOff_AndKestrelServesTheSameHandshake(EngineWebSocketMode mode)
    {
        await using var host = await Host.StartAsync(configure: o => o.Engine.WebSocketMode = mode);
        var before = host.FastPathSessions;

        await using var raw = await RawConn.ConnectAsync(host.Port);
        var key = NewKey();
        await raw.SendAsync(HandshakeHead(host.Port, OpenQuery, key));
        AssertSwitched(await raw.ReadResponseAsync(), key);
        SidOf(await raw.ReadTextAsync());
        await raw.SendTextAsync("40");
        Assert.StartsWith("40{", await raw.ReadTextAsync(), StringComparison.Ordinal);
        Assert.Equal(before, host.FastPathSessions);
    }

    // ---- 4. errors are the HTTP path's ----

    [Fact]
    public async Task Eio3WebSocketHandshake_GetsTheHttpPathsUnsupportedProtocolError()
    {
        await using var fast = await Host.StartAsync();
        await using var plain = await Host.StartAsync(fastPath: false);
        var before = fast.FastPathSessions;

        var request = HandshakeHead(fast.Port, "EIO=3&transport=websocket", NewKey());
        var viaFast = await ExchangeAsync(fast, request);
        var viaHttp = await ExchangeAsync(plain, request);

        Assert.Equal(400, viaHttp.Status);
        Assert.Equal("{\"code\":5,\"message\":\"Unsupported protocol version\"}", viaHttp.Body);
        Assert.Equal((viaHttp.Status, viaHttp.Body), (viaFast.Status, viaFast.Body));
        Assert.Equal("application/json", viaFast.Headers["Content-Type"]);
        Assert.Equal(before, fast.FastPathSessions);
    }

    [Fact]
    public async Task WebSocketTransportOnAPlainGet_GetsTheHttpPathsBadRequestError()
    {
        await using var fast = await Host.StartAsync();
        await using var plain = await Host.StartAsync(fastPath: false);
        var before = fast.FastPathSessions;

        var viaFast = await fast.GetAsync(fast.WsUri(string.Empty, scheme: "http"));
        var viaHttp = await plain.GetAsync(plain.WsUri(string.Empty, scheme: "http"));

        Assert.Equal((400, "{\"code\":3,\"message\":\"Bad request\"}"), viaHttp);
        Assert.Equal(viaHttp, viaFast);
        Assert.Equal(before, fast.FastPathSessions);
    }

    [Fact]
    public async Task WebSocketHandshakeWithAnUnknownSid_GetsTheHttpPathsUnknownSidError()
    {
        await using var fast = await Host.StartAsync();
        await using var plain = await Host.StartAsync(fastPath: false);
        var before = fast.FastPathSessions;

        var request = HandshakeHead(fast.Port, OpenQuery + "&sid=nope", NewKey());
        var viaFast = await ExchangeAsync(fast, request);
        var viaHttp = await ExchangeAsync(plain, request);

        Assert.Equal(400, viaHttp.Status);
        Assert.Equal("{\"code\":1,\"message\":\"Session ID unknown\"}", viaHttp.Body);
        Assert.Equal((viaHttp.Status, viaHttp.Body), (viaFast.Status, viaFast.Body));
        Assert.Equal(before, fast.FastPathSessions);

        // and ClientWebSocket sees the refusal as such
        await Assert.ThrowsAsync<WebSocketException>(() => WsClient.ConnectAsync(fast.WsUri("&sid=nope")));
        Assert.Equal(before, fast.FastPathSessions);
    }

    // ---- 5. AllowRequest ----

    [Fact]
    public async Task AllowRequest_RefusesWith400AsTheReferenceAndEndsTheConnection_AllowsWithAWorkingSession()
    {
        var seen = new ConcurrentQueue<string>();
        await using var host = await Host.StartAsync(configure: o => o.Engine.AllowRequest = context =>
        {
            var request = context.Request;
            seen.Enqueue($"{request.Method} {request.Path} {request.QueryString} foo={request.Query["foo"]} origin={request.Headers.Origin} x-test={request.Headers["x-test"]}");
            return ValueTask.FromResult(request.Headers.Origin == "http://evil.test" ? "Origin not allowed" : null);
        });
        var before = host.FastPathSessions;

        await using (var refused = await RawConn.ConnectAsync(host.Port))
        {
            await refused.SendAsync(HandshakeHead(host.Port, OpenQuery + "&foo=1", NewKey(), "Origin: http://evil.test\r\nx-test: a\r\n"));
            var response = await refused.ReadResponseAsync();
            Assert.Equal(400, response.Status);
            Assert.StartsWith("HTTP/1.1 400", response.StatusLine, StringComparison.Ordinal);
            Assert.Equal("application/json", response.Headers["Content-Type"]);
            Assert.Equal("{\"code\":4,\"message\":\"Origin not allowed\"}", response.Body);
            await refused.ReadEndAsync();
        }

        Assert.True(seen.TryDequeue(out var refusedRequest));
        Assert.Equal("GET /socket.io/ ?EIO=4&transport=websocket&foo=1 foo=1 origin=http://evil.test x-test=a", refusedRequest);
        Assert.Equal(before, host.FastPathSessions);

        await using var allowed = await RawConn.ConnectAsync(host.Port);
        var key = NewKey();
        await allowed.SendAsync(HandshakeHead(host.Port, OpenQuery + "&foo=2", key, "Origin: http://good.test\r\nx-test: b\r\n"));
        AssertSwitched(await allowed.ReadResponseAsync(), key);
        var engineSid = SidOf(await allowed.ReadTextAsync());
        Assert.Equal(before + 1, host.FastPathSessions);
        await allowed.SendTextAsync("40");
        var reply = await allowed.ReadTextAsync();
        using var json = JsonDocument.Parse(reply[2..]);
        var socket = await host.SocketAsync(engineSid, json.RootElement.GetProperty("sid").GetString()!);
        socket.Emit("ok");
        Assert.Equal("42[\"ok\"]", await allowed.ReadTextAsync());

        Assert.True(seen.TryDequeue(out var allowedRequest));
        Assert.Equal("GET /socket.io/ ?EIO=4&transport=websocket&foo=2 foo=2 origin=http://good.test x-test=b", allowedRequest);
    }

    [Fact]
    public async Task AllowRequest_SeesTheSameRequestAsOverTheHttpPath()
    {
        var seen = new ConcurrentQueue<string>();
        ValueTask<string?> Record(HttpContext context)
        {
            var request = context.Request;
            var headers = string.Join("|", request.Headers
                .Where(h => !h.Key.StartsWith("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase))
                .OrderBy(h => h.Key, StringComparer.OrdinalIgnoreCase)
                .Select(h => $"{h.Key.ToLowerInvariant()}={h.Value} ({h.Value.Count} value(s))"));
            var query = string.Join("|", request.Query.OrderBy(q => q.Key, StringComparer.Ordinal).Select(q => $"{q.Key}={q.Value}"));
            seen.Enqueue($"{request.Method} {request.Scheme} {request.Protocol} host={request.Host} path={request.PathBase}{request.Path} qs={request.QueryString} "
                + $"https={request.IsHttps} query={query} headers={headers} ip={context.Connection.RemoteIpAddress}");
            return ValueTask.FromResult<string?>(null);
        }

        await using var fast = await Host.StartAsync(configure: o => o.Engine.AllowRequest = Record);
        await using var plain = await Host.StartAsync(fastPath: false, configure: o => o.Engine.AllowRequest = Record);
        var results = new List<string>();
        foreach (var host in new[] { fast, plain })
        {
            await using var raw = await RawConn.ConnectAsync(host.Port);
            var key = NewKey();
            await raw.SendAsync(HandshakeHead(host.Port, OpenQuery + "&foo=bar&foo=baz", key, "Origin: http://o.test\r\nX-Dup: 1\r\nX-Dup: 2\r\n")
                .Replace($"127.0.0.1:{host.Port}", "example.test", StringComparison.Ordinal));
            AssertSwitched(await raw.ReadResponseAsync(), key);
            Assert.True(seen.TryDequeue(out var line));
            results.Add(line);
        }

        Assert.Equal(1, fast.FastPathSessions);
        Assert.True(results[1] == results[0], "HTTP:\n" + results[1] + "\nFAST:\n" + results[0]);
    }

    [Fact]
    public async Task AllowRequest_Throwing_IsAnsweredAsOverTheHttpPath()
    {
        static ValueTask<string?> Throw(HttpContext context) => throw new InvalidOperationException("the hook failed");
        await using var fast = await Host.StartAsync(configure: o => o.Engine.AllowRequest = Throw);
        await using var plain = await Host.StartAsync(fastPath: false, configure: o => o.Engine.AllowRequest = Throw);

        var request = HandshakeHead(fast.Port, OpenQuery, NewKey());
        var viaHttp = await ExchangeAsync(plain, request);
        var viaFast = await ExchangeAsync(fast, request);
        Assert.Equal(500, viaHttp.Status);
        Assert.Equal(viaHttp.Status, viaFast.Status);
    }

    // ---- 6. a head split over two writes ----

    [Theory]
    [InlineData(1)]
    [InlineData(20)]
    [InlineData(60)]
    [InlineData(-3)] // in the middle of the final CRLFCRLF
    [InlineData(-1)]
    public async Task HeadSplitOverTwoWrites_StillGetsAWorkingWebSocket(int split)
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;

        await using var raw = await RawConn.ConnectAsync(host.Port);
        var key = NewKey();
        var head = Encoding.ASCII.GetBytes(HandshakeHead(host.Port, OpenQuery, key));
        var at = split > 0 ? split : head.Length + split;
        await raw.SendAsync(head[..at]);
        await raw.SendAsync(head[at..]);
        AssertSwitched(await raw.ReadResponseAsync(), key);
        var engineSid = SidOf(await raw.ReadTextAsync());
        await raw.SendTextAsync("40");
        var reply = await raw.ReadTextAsync();
        using var json = JsonDocument.Parse(reply[2..]);
        var socket = await host.SocketAsync(engineSid, json.RootElement.GetProperty("sid").GetString()!);
        socket.Emit("e", split);
        Assert.Equal($"42[\"e\",{split}]", await raw.ReadTextAsync());

        // through either path, but at most once through the fast one
        Assert.InRange(host.FastPathSessions - before, 0, 1);
    }

    // ---- 7. malformed heads ----

    /// <summary>Heads Kestrel answers with an error, which the fast path's parser declines too.</summary>
    public static TheoryData<string> MalformedHeads =>
    [
        "space before colon",
        "non-ASCII header value",
        "non-ASCII in the target",
        "NUL in a header value",
        "Transfer-Encoding",
        "obsolete line folding",
        "no Host",
        "empty header name",
    ];

    /// <summary>Heads Kestrel answers with an error (or a limit) that the fast path's parser lets through.</summary>
    public static TheoryData<string> HeadsOnlyKestrelRefuses =>
    [
        "bare CR in a header value",
        "bare LF folding a header value",
        "two Host headers",
        "invalid Host",
        "more headers than MaxRequestHeaderCount",
        "request line over MaxRequestLineSize",
    ];

    [Theory]
    [MemberData(nameof(MalformedHeads))]
    [MemberData(nameof(HeadsOnlyKestrelRefuses))]
    public async Task MalformedHead_IsNotAnswered101_ButAsByKestrel(string malformation)
    {
        await using var fast = await Host.StartAsync();
        await using var plain = await Host.StartAsync(fastPath: false);
        var before = fast.FastPathSessions;

        var viaHttp = await ExchangeAsync(plain, Malformed(plain.Port, malformation));
        var viaFast = await ExchangeAsync(fast, Malformed(fast.Port, malformation));

        Assert.True(viaHttp.Status is >= 400 and < 500, $"the reference server answered \"{viaHttp.StatusLine}\" to \"{malformation}\"");
        Assert.True(viaFast.Status != 101, $"the fast path switched protocols for \"{malformation}\" (Kestrel: \"{viaHttp.StatusLine}\")");
        Assert.Equal(viaHttp.Status, viaFast.Status);
        Assert.Equal(before, fast.FastPathSessions);

        // the server keeps serving others
        await using var client = await WsClient.ConnectAsync(fast.WsUri());
        Assert.StartsWith("0{", await client.ReceiveTextAsync(), StringComparison.Ordinal);
        Assert.Equal(before + 1, fast.FastPathSessions);
    }

    /// <summary>Unusual heads Kestrel accepts (and upgrades): the fast path leaves them to it.</summary>
    [Theory]
    [InlineData("Content-Length")]
    [InlineData("DEL in a header value")]
    [InlineData("HTTP/1.0")]
    [InlineData("lower-case method")]
    public async Task UnusualHead_IsLeftToKestrel(string variation)
    {
        await using var fast = await Host.StartAsync();
        await using var plain = await Host.StartAsync(fastPath: false);
        var before = fast.FastPathSessions;

        var viaHttp = await ExchangeAsync(plain, Malformed(plain.Port, variation));
        var viaFast = await ExchangeAsync(fast, Malformed(fast.Port, variation));

        Assert.Equal(viaHttp.Status, viaFast.Status);
        Assert.Equal(before, fast.FastPathSessions);
    }

    private static string Malformed(int port, string malformation)
    {
        var head = HandshakeHead(port, OpenQuery, NewKey());
        return malformation switch
        {
            "space before colon" => head.Replace("Upgrade: websocket", "Upgrade : websocket", StringComparison.Ordinal),
            "non-ASCII header value" => AddHeader(head, "X-Name: caf\u00e9"),
            "non-ASCII in the target" => head.Replace("transport=websocket", "transport=websocket&x=\u00e9", StringComparison.Ordinal),
            "NUL in a header value" => AddHeader(head, "X-Name: a\0b"),
            "DEL in a header value" => AddHeader(head, "X-Name: a\u007Fb"),
            "Content-Length" => AddHeader(head, "Content-Length: 0"),
            "Transfer-Encoding" => AddHeader(head, "Transfer-Encoding: chunked") + "0\r\n\r\n",
            "obsolete line folding" => AddHeader(head, "X-Name: a\r\n b"),
            "no Host" => head.Replace($"Host: 127.0.0.1:{port}\r\n", string.Empty, StringComparison.Ordinal),
            "HTTP/1.0" => head.Replace("HTTP/1.1", "HTTP/1.0", StringComparison.Ordinal),
            "lower-case method" => "get" + head[3..],
            "empty header name" => AddHeader(head, ": value"),
            "bare CR in a header value" => AddHeader(head, "X-Name: a\rb"),
            "bare LF folding a header value" => AddHeader(head, "X-Name: a\n b"),
            "two Host headers" => AddHeader(head, "Host: other.test"),
            "invalid Host" => head.Replace($"Host: 127.0.0.1:{port}", "Host: bad host", StringComparison.Ordinal),
            // Kestrel's defaults: 100 headers, an 8 KB request line (the fast path reads up to 16 KB)
            "more headers than MaxRequestHeaderCount" => AddHeader(head, string.Join("\r\n", Enumerable.Range(0, 120).Select(i => $"X-H{i}: v"))),
            "request line over MaxRequestLineSize" => head.Replace("transport=websocket", "transport=websocket&pad=" + new string('p', 9000), StringComparison.Ordinal),
            _ => throw new ArgumentOutOfRangeException(nameof(malformation), malformation, null),
        };

        static string AddHeader(string head, string line) => head[..^2] + line + "\r\n\r\n";
    }

    [Fact]
    public async Task MaxConcurrentUpgradedConnections_AppliesAsOverTheHttpPath()
    {
        static void Limit(WebApplicationBuilder builder) => builder.WebHost.ConfigureKestrel(k => k.Limits.MaxConcurrentUpgradedConnections = 1);
        await using var fast = await Host.StartAsync(configureKestrel: Limit);
        await using var plain = await Host.StartAsync(fastPath: false, configureKestrel: Limit);

        var outcomes = new List<string>();
        foreach (var host in new[] { fast, plain })
        {
            await using var first = await WsClient.ConnectAsync(host.WsUri());
            Assert.StartsWith("0{", await first.ReceiveTextAsync(), StringComparison.Ordinal);
            var second = await ExchangeAsync(host, HandshakeHead(host.Port, OpenQuery, NewKey()));
            outcomes.Add(second.Status.ToString(CultureInfo.InvariantCulture));
        }

        Assert.True(outcomes[1] != "101", "the reference server upgraded a connection over the limit");
        Assert.Equal(outcomes[1], outcomes[0]);
    }

    // ---- 9. RFC 6455 on the fast path's own WebSocket (frames, control frames, violations) ----

    [Fact]
    public async Task FragmentedMessage_WithAPingBetweenItsFragments_IsReassembled_AndThePingAnsweredFirst()
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        socket.On("sync", ctx => ctx.Ack(ctx.GetArg<string>(0)));

        // 420["sync","héllo"] in three fragments (the é split across two), a ping in between
        var message = Encoding.UTF8.GetBytes("420[\"sync\",\"h\u00e9llo\"]");
        var cut1 = 7;
        var cut2 = Array.IndexOf(message, (byte)0xC3) + 1;
        await raw.SendAsync(ClientFrames.Frame(0x01, message[..cut1]));
        await raw.SendAsync(ClientFrames.Frame(0x89, "are you there"u8.ToArray()));
        await raw.SendAsync(ClientFrames.Frame(0x00, message[cut1..cut2]));
        await raw.SendAsync(ClientFrames.Frame(0x00, []));
        await raw.SendAsync(ClientFrames.Frame(0x80, message[cut2..]));

        var pong = await raw.ReadFrameAsync();
        Assert.Equal(0xA, pong.Opcode);
        Assert.Equal("are you there", pong.Text);
        Assert.Equal("430[\"h\\u00E9llo\"]", await raw.ReadTextAsync()); // the serializer escapes non-ASCII
    }

    [Fact]
    public async Task LargeAndBinaryMessages_UseTheExtendedLengths_AndArrive()
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        socket.On("size", ctx => ctx.Ack(ctx.GetArg<string>(0)!.Length));
        socket.On("bin", ctx => ctx.Ack(ctx.GetArg<byte[]>(0)!.Length));

        foreach (var size in new[] { 200, 70_000 })
        {
            // 16-bit extended length, then 64-bit
            await raw.SendTextAsync($"421[\"size\",\"{new string('x', size)}\"]");
            Assert.Equal($"431[{size}]", await raw.ReadTextAsync());
        }

        // a binary attachment, its frame split in two fragments
        var attachment = RandomNumberGenerator.GetBytes(300);
        await raw.SendTextAsync("451-2[\"bin\",{\"_placeholder\":true,\"num\":0}]");
        await raw.SendAsync(ClientFrames.Frame(0x02, attachment[..100]));
        await raw.SendAsync(ClientFrames.Frame(0x80, attachment[100..]));
        Assert.Equal("432[300]", await raw.ReadTextAsync());
    }

    public static TheoryData<string, byte[]> ProtocolViolations => new()
    {
        { "unmasked", ClientFrames.Frame(0x81, "42[\"x\"]"u8.ToArray(), masked: false) },
        { "reserved bit", ClientFrames.Frame(0xC1, "42[\"x\"]"u8.ToArray()) },
        { "unknown opcode", ClientFrames.Frame(0x83, "42"u8.ToArray()) },
        { "continuation without a message", ClientFrames.Frame(0x80, "42"u8.ToArray()) },
        { "fragmented ping", ClientFrames.Frame(0x09, "hi"u8.ToArray()) },
        { "ping over 125 bytes", ClientFrames.Frame(0x89, new byte[126]) },
        { "close code 1005", ClientFrames.Frame(0x88, [0x03, 0xED]) },
        { "one-byte close", ClientFrames.Frame(0x88, [0x03]) },
        { "new message inside a fragmented one", [.. ClientFrames.Frame(0x01, "42"u8.ToArray()), .. ClientFrames.Frame(0x81, "42"u8.ToArray())] },
    };

    [Theory]
    [MemberData(nameof(ProtocolViolations))]
    public async Task ProtocolViolation_GetsCloseFrame1002_AndEndsTheSession(string violation, byte[] bytes)
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await raw.SendAsync(bytes);
        var close = await raw.ReadFrameAsync();
        Assert.True(close.Opcode == RawConn.OpClose, $"{violation}: expected a close frame, got opcode {close.Opcode}");
        Assert.Equal(1002, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        await raw.ReadUntilEndAsync();
        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
        Assert.Equal(0, host.Io.Engine.SessionCount);
    }

    [Fact]
    public async Task TextThatIsNotUtf8_GetsCloseFrame1007()
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await raw.SendFrameAsync(RawConn.OpText, [(byte)'4', (byte)'2', (byte)'[', (byte)'"', 0xFF, (byte)'"', (byte)']']);
        var close = await raw.ReadFrameAsync();
        Assert.Equal(RawConn.OpClose, close.Opcode);
        Assert.Equal(1007, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
    }

    /// <summary>The bytes refused over polling with 400 (UntrustedInputTests), over either WebSocket path.</summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AnEventWhoseArgumentIsNotUtf8_GetsCloseFrame1007_AndNoHandlerRuns(bool fastPath)
    {
        await using var host = await Host.StartAsync(fastPath);
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        var reason = new Signal<string>();
        var handled = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        socket.On("x", ctx => handled.Set(ctx.EventName));

        await raw.SendFrameAsync(RawConn.OpText, [.. "42[\"x\",\""u8, 0xFF, 0xFE, .. "\"]"u8]);
        var close = await raw.ReadFrameAsync();
        Assert.Equal(RawConn.OpClose, close.Opcode);
        Assert.Equal(1007, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
        Assert.False(handled.IsSet);
    }

    [Fact]
    public async Task MessageOverMaxPayload_GetsCloseFrame1009()
    {
        await using var host = await Host.StartAsync(configure: o => o.Engine.MaxPayload = 1000);
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        // fragments that add up to more than MaxPayload
        await raw.SendAsync(ClientFrames.Frame(0x01, Encoding.ASCII.GetBytes("42[\"" + new string('a', 600))));
        await raw.SendAsync(ClientFrames.Frame(0x80, Encoding.ASCII.GetBytes(new string('a', 600) + "\"]")));
        var close = await raw.ReadFrameAsync();
        Assert.Equal(RawConn.OpClose, close.Opcode);
        Assert.Equal(1009, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
    }

    [Theory]
    [InlineData(new byte[0], new byte[0])] // no status: answered without one (1005 never goes on the wire)
    [InlineData(new byte[] { 0x03, 0xE9, (byte)'b', (byte)'y', (byte)'e' }, new byte[] { 0x03, 0xE9 })] // 1001 "bye": 1001 echoed
    public async Task ClientCloseFrame_IsEchoed(byte[] sent, byte[] expected)
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await raw.SendFrameAsync(RawConn.OpClose, sent);
        var close = await raw.ReadFrameAsync();
        Assert.Equal(RawConn.OpClose, close.Opcode);
        Assert.Equal(expected, close.Payload);
        await raw.ReadEndAsync();
        Assert.Equal(DisconnectReason.TransportClose, await reason.WaitAsync());
    }

    [Fact]
    public async Task ConnectionEndingInsideAFrame_DisconnectsTheServerSocket()
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        var frame = ClientFrames.Masked(RawConn.OpText, Encoding.ASCII.GetBytes("42[\"never finished\"]"));
        await raw.SendAsync(frame[..9]);
        await raw.DisposeAsync();

        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
        Assert.Equal(0, host.Io.Engine.SessionCount);
    }

    // ---- 8. closing ----

    [Fact]
    public async Task ServerDisconnectWithClose_SendsTheDisconnectPacketAndACloseFrame_ThenEndsTheConnection()
    {
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        Assert.Equal(before + 1, host.FastPathSessions);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        socket.Disconnect(true);
        Assert.Equal("41", await raw.ReadTextAsync());
        var close = await raw.ReadFrameAsync();
        Assert.Equal(RawConn.OpClose, close.Opcode);
        Assert.True(close.Payload.Length >= 2, "a close frame with a status code");
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        await raw.SendFrameAsync(RawConn.OpClose, close.Payload);
        await raw.ReadEndAsync();

        await reason.WaitAsync();
        Assert.False(socket.Connected);
        Assert.Equal(0, host.Io.Engine.SessionCount);
    }

    [Fact]
    public async Task ClientCloseFrame_IsAnsweredWithACloseFrame_AndTheServerSocketDisconnects()
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await raw.SendFrameAsync(RawConn.OpClose, [0x03, 0xE8]);
        var close = await raw.ReadFrameAsync();
        Assert.Equal(RawConn.OpClose, close.Opcode);
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        await raw.ReadEndAsync();

        Assert.Equal(DisconnectReason.TransportClose, await reason.WaitAsync());
        Assert.False(socket.Connected);
        Assert.Equal(0, host.Io.Engine.SessionCount);
    }

    [Fact]
    public async Task ClientResettingTheConnectionWithUnreadData_DisconnectsTheServerSocket_WithoutAnError()
    {
        // closing a socket with unread data sends a reset: the server's read fails with
        // ECONNRESET, which must end the session (transport error), not escape as an error
        await using var host = await Host.StartAsync();
        var sockets = new List<(RawConn Raw, Signal<string> Reason)>();
        for (var i = 0; i < 5; i++)
        {
            var (raw, socket) = await OpenRawSioAsync(host);
            var reason = new Signal<string>();
            socket.OnDisconnect(reason.Set);
            socket.Emit("unread", new string('u', 2000));
            await raw.WaitUnreadAsync();
            sockets.Add((raw, reason));
        }

        foreach (var (raw, _) in sockets)
        {
            raw.CloseWithReset();
            await raw.DisposeAsync();
        }

        foreach (var (_, reason) in sockets)
        {
            Assert.Contains(await reason.WaitAsync(), new[] { DisconnectReason.TransportClose, DisconnectReason.TransportError });
        }

        Assert.Equal(0, host.Io.Engine.SessionCount);
        Assert.Empty(host.Errors);
    }

    [Fact]
    public async Task ClientResettingTheConnection_DisconnectsTheServerSocket()
    {
        await using var host = await Host.StartAsync();
        var (raw, socket) = await OpenRawSioAsync(host);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        raw.Reset();
        await raw.DisposeAsync();

        Assert.Contains(await reason.WaitAsync(), new[] { DisconnectReason.TransportClose, DisconnectReason.TransportError });
        Assert.Equal(0, host.Io.Engine.SessionCount);
        Assert.Empty(host.Errors);
    }

    [Fact]
    public async Task Stop_EndsOpenFastPathSessions_Promptly()
    {
        var host = await Host.StartAsync();
        try
        {
            var (raw, socket) = await OpenRawSioAsync(host);
            await using var _ = raw;
            var reason = new Signal<string>();
            socket.OnDisconnect(reason.Set);

            var clock = Stopwatch.StartNew();
            await host.StopAsync();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"StopAsync took {clock.Elapsed}");
            Assert.Equal(DisconnectReason.ServerShuttingDown, await reason.WaitAsync());
            await raw.ReadUntilEndAsync();
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Stop_WithAnIdleNewConnection_IsNotDelayed(bool fastPath)
    {
        var host = await Host.StartAsync(fastPath);
        try
        {
            // a connection Kestrel has accepted, whose client has not sent anything yet
            using var idle = new TcpClient();
            await idle.ConnectAsync(IPAddress.Loopback, host.Port).WaitAsync(Deadline);
            await host.Connections.WaitForStartsAsync(1);

            var clock = Stopwatch.StartNew();
            await host.StopAsync();
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"StopAsync took {clock.Elapsed} (fast path: {fastPath})");
        }
        finally
        {
            await host.DisposeAsync();
        }
    }

    // ---- 9. many at once ----

    [Fact]
    public async Task TwoHundredConcurrentClients_AllConnectThroughTheFastPath()
    {
        const int count = 200;
        await using var host = await Host.StartAsync();
        var before = host.FastPathSessions;
        var clients = new ConcurrentBag<WsClient>();
        try
        {
            var connected = await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
            {
                var client = await WsClient.ConnectAsync(host.WsUri($"&n={i}"));
                clients.Add(client);
                var sid = SidOf(await client.ReceiveTextAsync());
                await client.SendAsync("40");
                var socket = await host.SocketAsync(sid, await client.ConnectReplyAsync());
                Assert.Equal(i.ToString(CultureInfo.InvariantCulture), socket.Handshake.Query["n"]);
                return socket;
            })).WaitAsync(TimeSpan.FromSeconds(60));

            Assert.Equal(count, connected.Select(s => s.Id).Distinct().Count());
            Assert.All(connected, s => Assert.True(s.Connected));
            Assert.Equal(before + count, host.FastPathSessions);
            Assert.Equal(count, host.Io.Engine.SessionCount);

            host.Io.Emit("all", 1);
            await Task.WhenAll(clients.Select(async c => Assert.Equal("42[\"all\",1]", await c.NextAsync()))).WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        }

        Assert.Empty(host.Errors);
    }

    // ---- 10. clients that stop reading (issue 16, defect 3) ----

    /// <summary>What one event of the floods below weighs: 16 KB of text.</summary>
    private static readonly string s_filler = new('f', 16 * 1024);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClientThatNeverReads_IsClosedAtTheByteBudget_AndTheServerEndsItsConnection(bool fastPath)
    {
        const long budget = 256 * 1024;
        await using var host = await Host.StartAsync(fastPath, o => o.Engine.MaxBufferedBytes = budget);
        var (raw, socket) = await OpenRawSioAsync(host, receiveBuffer: 4096);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        // far more than the kernel's buffers hold (32 MB), and far fewer packets than MaxBufferedPackets
        var most = 0L;
        for (var i = 0; i < 2000 && socket.Connected; i++)
        {
            socket.Emit("n", s_filler);
            most = Math.Max(most, socket.Conn.QueuedBytes);
        }

        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
        Assert.True(most <= budget, $"{most} bytes were queued, over the budget of {budget}");
        await host.Connections.WaitForStopsAsync(1); // without the client reading a byte
        await raw.ReadUntilEndAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ClientThatNeverReads_AWriteStuckPastTheWriteTimeout_ClosesTheSession_AndTheServerEndsItsConnection(bool fastPath)
    {
        var time = new FakeTimeProvider();
        await using var host = await Host.StartAsync(fastPath, o =>
        {
            o.Engine.TimeProvider = time;
            o.Engine.WriteTimeout = TimeSpan.FromSeconds(10);
            o.Engine.MaxBufferedBytes = 64 * 1024 * 1024; // the byte budget stays out of the way
        });
        var (raw, socket) = await OpenRawSioAsync(host, receiveBuffer: 4096);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        var synced = 0;
        socket.On("sync", _ => Interlocked.Increment(ref synced));
        for (var i = 0; i < 1000; i++)
        {
            socket.Emit("n", s_filler);
        }

        // heartbeat ticks (each a ping interval, longer than the write timeout) while a write is
        // pending; the client answers pings without reading (the event after the pong tells when
        // the server has seen it), so only the write timeout can close the session
        for (var round = 1; round <= 10 && !reason.IsSet; round++)
        {
            await WaitUntilAsync(() => socket.Conn.WritePending || !socket.Connected);
            time.Advance(host.Io.Options.Engine.PingInterval);
            if (!reason.IsSet)
            {
                await raw.SendTextAsync("3");
                await raw.SendTextAsync("42[\"sync\"]");
                var expected = round;
                await WaitUntilAsync(() => Volatile.Read(ref synced) >= expected || !socket.Connected);
            }
        }

        Assert.Equal(DisconnectReason.TransportError, await reason.WaitAsync());
        await host.Connections.WaitForStopsAsync(1);
        await raw.ReadUntilEndAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SessionClosedWhileAWriteIsStuck_ItsConnectionIsEndedAtTheWriteTimeout(bool fastPath)
    {
        var time = new FakeTimeProvider();
        await using var host = await Host.StartAsync(fastPath, o =>
        {
            o.Engine.TimeProvider = time;
            o.Engine.WriteTimeout = TimeSpan.FromSeconds(60);
            o.Engine.MaxBufferedBytes = 64 * 1024 * 1024;
        });
        var (raw, socket) = await OpenRawSioAsync(host, receiveBuffer: 4096);
        await using var _ = raw;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        for (var i = 0; i < 1000; i++)
        {
            socket.Emit("n", s_filler);
        }

        await WaitUntilAsync(() => socket.Conn.WritePending);

        // the ping timeout closes the session (its close frame waits behind the stuck write)...
        time.Advance(host.Io.Options.Engine.PingInterval);
        time.Advance(host.Io.Options.Engine.PingTimeout);
        Assert.Equal(DisconnectReason.PingTimeout, await reason.WaitAsync());

        // ...and the connection ends at the write timeout, without the client reading a byte
        time.Advance(TimeSpan.FromSeconds(60));
        await host.Connections.WaitForStopsAsync(1);
        await raw.ReadUntilEndAsync();
    }

    /// <summary>Awaits a condition the server reaches by itself, checking it every few milliseconds, with the deadline.</summary>
    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Deadline);
        while (!condition())
        {
            await Task.Delay(5, cts.Token); // polls a condition, with a deadline
        }
    }

    // ---- Kestrel endpoint defaults of the application ----

    [Fact]
    public async Task TheApplicationsOwnEndpointDefaults_AreKept_AndTheFastPathStillApplies()
    {
        var applicationMiddlewareRuns = 0;
        await using var host = await Host.StartAsync(configureKestrel: builder =>
            builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(listen => listen.Use(next => connection =>
            {
                Interlocked.Increment(ref applicationMiddlewareRuns);
                return next(connection);
            }))));
        var before = host.FastPathSessions;

        await using var client = await WsClient.ConnectAsync(host.WsUri());
        Assert.StartsWith("0{", await client.ReceiveTextAsync(), StringComparison.Ordinal);
        Assert.True(Volatile.Read(ref applicationMiddlewareRuns) >= 1, "the application's connection middleware did not run");
        Assert.Equal(before + 1, host.FastPathSessions);
    }

    // ---- helpers ----

    private static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    private static string HandshakeHead(int port, string query, string key, string extraHeaders = "") =>
        $"GET /socket.io/?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extraHeaders}\r\n";

    private static void AssertSwitched(RawResponse response, string key)
    {
        Assert.True(response.Status == 101, $"expected 101, got \"{response.StatusLine}\" {response.Body}");
        Assert.StartsWith("HTTP/1.1 101", response.StatusLine, StringComparison.Ordinal);
        Assert.Equal("websocket", response.Headers["Upgrade"], ignoreCase: true);
        Assert.Contains("upgrade", response.Headers["Connection"], StringComparison.OrdinalIgnoreCase);
        var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        Assert.Equal(expected, response.Headers["Sec-WebSocket-Accept"]);
    }

    private static string SidOf(string open)
    {
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(open[1..]);
        return json.RootElement.GetProperty("sid").GetString()!;
    }

    /// <summary>Sends <paramref name="request"/> on a new connection and reads the answer (status 0: none).</summary>
    private static async Task<RawResponse> ExchangeAsync(Host host, string request)
    {
        await using var raw = await RawConn.ConnectAsync(host.Port);
        await raw.SendAsync(request);
        return await raw.ReadResponseAsync();
    }

    /// <summary>A raw client through the handshake and CONNECT to "/", with its server-side socket.</summary>
    private static async Task<(RawConn Raw, SocketIOSocket Socket)> OpenRawSioAsync(Host host, int receiveBuffer = 0)
    {
        var raw = await RawConn.ConnectAsync(host.Port, receiveBuffer);
        try
        {
            var key = NewKey();
            await raw.SendAsync(HandshakeHead(host.Port, OpenQuery, key));
            AssertSwitched(await raw.ReadResponseAsync(), key);
            var engineSid = SidOf(await raw.ReadTextAsync());
            await raw.SendTextAsync("40");
            var reply = await raw.ReadTextAsync();
            Assert.StartsWith("40{", reply, StringComparison.Ordinal);
            using var json = JsonDocument.Parse(reply[2..]);
            return (raw, await host.SocketAsync(engineSid, json.RootElement.GetProperty("sid").GetString()!));
        }
        catch
        {
            await raw.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A Socket.IO server on Kestrel with an endpoint from a URL (http://127.0.0.1:0), optionally
    /// with the fast path, the library at /socket.io/ and an ordinary route at /hello.
    /// </summary>
    private sealed class Host : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentDictionary<string, TaskCompletionSource<SocketIOSocket>> _sockets = new(StringComparer.Ordinal);
        private bool _stopped;

        private Host(WebApplication app, int port, ConnectionLog connections)
        {
            _app = app;
            Port = port;
            Connections = connections;
            Io = app.Services.GetRequiredService<SocketIOServer>();
            Http = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { Timeout = Deadline };
            Io.Sockets.OnConnection(socket => Slot(socket.Conn.Id, socket.Id).TrySetResult(socket));
        }

        public int Port { get; }

        public SocketIOServer Io { get; }

        public HttpClient Http { get; }

        public ConnectionLog Connections { get; }

        /// <summary>Errors logged by the server (Kestrel's included).</summary>
        public IReadOnlyCollection<string> Errors => Connections.Errors;

        public int FastPathSessions => Volatile.Read(ref Io.Engine.FastPathSessions);

        public static async Task<Host> StartAsync(
            bool fastPath = true,
            Action<SocketIOOptions>? configure = null,
            Action<WebApplicationBuilder>? configureKestrel = null)
        {
            var connections = new ConnectionLog();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Logging.AddFilter("Microsoft.AspNetCore.Server.Kestrel.Connections", LogLevel.Debug);
            builder.Logging.AddProvider(connections);
            configureKestrel?.Invoke(builder);
            if (fastPath)
            {
                builder.Services.AddEngineIOWebSocketFastPath();
            }

            builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, listen =>
            {
                if (fastPath)
                {
                    listen.UseEngineIOWebSocketFastPath();
                }
            }));
            builder.Services.AddSocketIO(o => configure?.Invoke(o));
            var app = builder.Build();
            app.UseWebSockets();
            app.MapSocketIO("/socket.io");
            app.MapGet("/hello", () => "hi");
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new Host(app, new Uri(address).Port, connections);
        }

        public Uri WsUri(string query = "", string scheme = "ws") => new($"{scheme}://127.0.0.1:{Port}/socket.io/?{OpenQuery}{query}");

        public Uri PollingUri(string query) => new($"http://127.0.0.1:{Port}/socket.io/?EIO=4&transport=polling{query}");

        public Task<SocketIOSocket> SocketAsync(string engineSid, string id) => Slot(engineSid, id).Task.WaitAsync(Deadline);

        public async Task<(int Status, string Body)> GetAsync(Uri uri)
        {
            using var response = await Http.GetAsync(uri);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        public async Task<(int Status, string Body)> PostAsync(Uri uri, string body)
        {
            using var content = new StringContent(body, Encoding.UTF8, "text/plain");
            using var response = await Http.PostAsync(uri, content);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        public async Task StopAsync()
        {
            _stopped = true;
            await _app.StopAsync();
        }

        private TaskCompletionSource<SocketIOSocket> Slot(string engineSid, string id) =>
            _sockets.GetOrAdd(engineSid + "@" + id, static _ => new TaskCompletionSource<SocketIOSocket>(TaskCreationOptions.RunContinuationsAsynchronously));

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            if (!_stopped)
            {
                _stopped = true;
                await _app.StopAsync();
            }

            await _app.DisposeAsync();
        }
    }

    /// <summary>Kestrel's connection starts (to know a connection was accepted) and every error logged.</summary>
    private sealed class ConnectionLog : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _errors = new();
        private readonly object _gate = new();
        private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
        private readonly List<(int Count, TaskCompletionSource Done)> _stopWaiters = [];
        private int _starts;
        private int _stops;

        public IReadOnlyCollection<string> Errors => _errors;

        /// <summary>Waits until Kestrel has ended <paramref name="count"/> connections.</summary>
        public Task WaitForStopsAsync(int count)
        {
            lock (_gate)
            {
                if (_stops >= count)
                {
                    return Task.CompletedTask;
                }

                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _stopWaiters.Add((count, done));
                return done.Task.WaitAsync(Deadline);
            }
        }

        private void OnStop()
        {
            lock (_gate)
            {
                _stops++;
                foreach (var waiter in _stopWaiters.Where(w => w.Count <= _stops).ToList())
                {
                    waiter.Done.TrySetResult();
                    _stopWaiters.Remove(waiter);
                }
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public Task WaitForStartsAsync(int count)
        {
            lock (_gate)
            {
                if (_starts >= count)
                {
                    return Task.CompletedTask;
                }

                var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, done));
                return done.Task.WaitAsync(Deadline);
            }
        }

        public void Dispose()
        {
        }

        private void OnStart()
        {
            lock (_gate)
            {
                _starts++;
                foreach (var waiter in _waiters.Where(w => w.Count <= _starts).ToList())
                {
                    waiter.Done.TrySetResult();
                    _waiters.Remove(waiter);
                }
            }
        }

        private sealed class Logger(ConnectionLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (eventId.Name == "ConnectionStart")
                {
                    log.OnStart();
                }

                if (eventId.Name == "ConnectionStop")
                {
                    log.OnStop();
                }

                if (logLevel >= LogLevel.Error)
                {
                    log._errors.Enqueue($"{category}: {formatter(state, exception)} {exception}");
                }
            }
        }
    }

    /// <summary>A ClientWebSocket with a deadline on every step.</summary>
    private sealed class WsClient : IAsyncDisposable
    {
        private readonly ClientWebSocket _ws;
        private readonly byte[] _buffer = new byte[16 * 1024];

        private WsClient(ClientWebSocket ws) => _ws = ws;

        public static async Task<WsClient> ConnectAsync(Uri uri, IReadOnlyDictionary<string, string>? headers = null)
        {
            var ws = new ClientWebSocket();
            ws.Options.Proxy = null;
            ws.Options.KeepAliveInterval = TimeSpan.Zero;
            foreach (var (name, value) in headers ?? new Dictionary<string, string>())
            {
                ws.Options.SetRequestHeader(name, value);
            }

            try
            {
                using var cts = new CancellationTokenSource(Deadline);
                await ws.ConnectAsync(uri, cts.Token);
            }
            catch
            {
                ws.Dispose();
                throw;
            }

            return new WsClient(ws);
        }

        public async Task<string> ReceiveTextAsync()
        {
            using var cts = new CancellationTokenSource(Deadline);
            using var message = new MemoryStream();
            try
            {
                while (true)
                {
                    var result = await _ws.ReceiveAsync(_buffer.AsMemory(), cts.Token);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        throw new InvalidOperationException($"the server closed the WebSocket ({_ws.CloseStatus}) before the expected message");
                    }

                    Assert.Equal(WebSocketMessageType.Text, result.MessageType);
                    message.Write(_buffer, 0, result.Count);
                    if (result.EndOfMessage)
                    {
                        return Encoding.UTF8.GetString(message.ToArray());
                    }
                }
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"no WebSocket message within {Deadline.TotalSeconds} s");
            }
        }

        /// <summary>The next text message other than a PING (answered).</summary>
        public async Task<string> NextAsync()
        {
            while (true)
            {
                var text = await ReceiveTextAsync();
                if (text != "2")
                {
                    return text;
                }

                await SendAsync("3");
            }
        }

        /// <summary>The socket id of the CONNECT reply to "/".</summary>
        public async Task<string> ConnectReplyAsync()
        {
            var reply = await NextAsync();
            Assert.StartsWith("40{", reply, StringComparison.Ordinal);
            using var json = JsonDocument.Parse(reply[2..]);
            return json.RootElement.GetProperty("sid").GetString()!;
        }

        public async Task SendAsync(string text)
        {
            using var cts = new CancellationTokenSource(Deadline);
            await _ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, cts.Token);
        }

        public async ValueTask DisposeAsync()
        {
            if (_ws.State == WebSocketState.Open)
            {
                try
                {
                    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                    await _ws.CloseAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
                {
                    // the server went away first
                }
            }

            _ws.Dispose();
        }
    }

    private sealed record RawResponse(int Status, string StatusLine, IReadOnlyDictionary<string, string> Headers, string Body);

    private sealed record RawFrame(int Opcode, byte[] Payload)
    {
        public string Text => Encoding.UTF8.GetString(Payload);
    }

    /// <summary>HTTP/1.1 and WebSocket frames over a plain TCP connection, every read with a deadline.</summary>
    private sealed class RawConn : IAsyncDisposable
    {
        public const int OpText = 0x1;
        public const int OpClose = 0x8;

        private readonly TcpClient _tcp;
        private readonly NetworkStream _net;
        private readonly BufferedStream _in;

        private RawConn(TcpClient tcp)
        {
            _tcp = tcp;
            _net = tcp.GetStream();
            _in = new BufferedStream(_net, 64 * 1024);
        }

        /// <summary>Connects; a positive <paramref name="receiveBuffer"/> fixes the socket's receive buffer (a small one fills fast).</summary>
        public static async Task<RawConn> ConnectAsync(int port, int receiveBuffer = 0)
        {
            var tcp = new TcpClient { NoDelay = true };
            if (receiveBuffer > 0)
            {
                tcp.ReceiveBufferSize = receiveBuffer;
            }

            try
            {
                using var cts = new CancellationTokenSource(Deadline);
                await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
                return new RawConn(tcp);
            }
            catch
            {
                tcp.Dispose();
                throw;
            }
        }

        public Task SendAsync(string latin1) => SendAsync(Encoding.Latin1.GetBytes(latin1));

        public async Task SendAsync(byte[] bytes)
        {
            using var cts = new CancellationTokenSource(Deadline);
            await _net.WriteAsync(bytes, cts.Token);
            await _net.FlushAsync(cts.Token);
        }

        /// <summary>The response head and body (Content-Length or chunked; none for 101); status 0 when the connection ended first.</summary>
        public async Task<RawResponse> ReadResponseAsync()
        {
            using var cts = new CancellationTokenSource(Deadline);
            try
            {
                var head = await ReadHeadAsync(cts.Token);
                if (head is null)
                {
                    return new RawResponse(0, "(connection ended without a response)", new Dictionary<string, string>(), string.Empty);
                }

                var lines = head.Split("\r\n");
                var parts = lines[0].Split(' ', 3);
                var status = int.Parse(parts[1], CultureInfo.InvariantCulture);
                var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                foreach (var line in lines.Skip(1))
                {
                    var colon = line.IndexOf(':', StringComparison.Ordinal);
                    headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                }

                var body = string.Empty;
                if (status != 101)
                {
                    if (headers.TryGetValue("Content-Length", out var length))
                    {
                        var bytes = new byte[int.Parse(length, CultureInfo.InvariantCulture)];
                        await _in.ReadExactlyAsync(bytes, cts.Token);
                        body = Encoding.UTF8.GetString(bytes);
                    }
                    else if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                    {
                        body = await ReadChunkedAsync(cts.Token);
                    }
                }

                return new RawResponse(status, lines[0], headers, body);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"no HTTP response within {Deadline.TotalSeconds} s");
            }
        }

        private async Task<string?> ReadHeadAsync(CancellationToken ct)
        {
            var head = new List<byte>();
            var one = new byte[1];
            while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
            {
                Assert.True(head.Count < 16 * 1024, "response head too long");
                int read;
                try
                {
                    read = await _in.ReadAsync(one, ct);
                }
                catch (IOException) when (head.Count == 0)
                {
                    return null;
                }

                if (read == 0)
                {
                    Assert.True(head.Count == 0, $"the connection ended inside a response head: {Encoding.ASCII.GetString([.. head])}");
                    return null;
                }

                head.Add(one[0]);
            }

            return Encoding.ASCII.GetString([.. head])[..^4];
        }

        private async Task<string> ReadChunkedAsync(CancellationToken ct)
        {
            var body = new MemoryStream();
            while (true)
            {
                var size = Convert.ToInt32((await ReadLineAsync(ct)).Split(';')[0], 16);
                if (size == 0)
                {
                    while ((await ReadLineAsync(ct)).Length > 0)
                    {
                        // trailers
                    }

                    return Encoding.UTF8.GetString(body.ToArray());
                }

                var chunk = new byte[size];
                await _in.ReadExactlyAsync(chunk, ct);
                body.Write(chunk);
                Assert.Equal(string.Empty, await ReadLineAsync(ct));
            }
        }

        private async Task<string> ReadLineAsync(CancellationToken ct)
        {
            var line = new List<byte>();
            var one = new byte[1];
            while (line.Count < 2 || line[^2] != '\r' || line[^1] != '\n')
            {
                await _in.ReadExactlyAsync(one, ct);
                line.Add(one[0]);
            }

            return Encoding.ASCII.GetString([.. line])[..^2];
        }

        /// <summary>The next frame, whatever its type.</summary>
        public async Task<RawFrame> ReadFrameAsync()
        {
            using var cts = new CancellationTokenSource(Deadline);
            try
            {
                var head = new byte[2];
                await _in.ReadExactlyAsync(head, cts.Token);
                Assert.True((head[0] & 0x80) != 0, $"a non-final frame, 0x{head[0]:X2}");
                Assert.True((head[1] & 0x80) == 0, "a server frame must not be masked");
                long length = head[1] & 0x7F;
                if (length == 126)
                {
                    var ext = new byte[2];
                    await _in.ReadExactlyAsync(ext, cts.Token);
                    length = BinaryPrimitives.ReadUInt16BigEndian(ext);
                }
                else if (length == 127)
                {
                    var ext = new byte[8];
                    await _in.ReadExactlyAsync(ext, cts.Token);
                    length = (long)BinaryPrimitives.ReadUInt64BigEndian(ext);
                }

                var payload = new byte[length];
                await _in.ReadExactlyAsync(payload, cts.Token);
                return new RawFrame(head[0] & 0x0F, payload);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"no WebSocket frame within {Deadline.TotalSeconds} s");
            }
        }

        /// <summary>The next text frame other than an Engine.IO PING (answered).</summary>
        public async Task<string> ReadTextAsync()
        {
            while (true)
            {
                var frame = await ReadFrameAsync();
                Assert.True(frame.Opcode == OpText, $"expected a text frame, got opcode 0x{frame.Opcode:X} ({frame.Text})");
                if (frame.Text != "2")
                {
                    return frame.Text;
                }

                await SendTextAsync("3");
            }
        }

        /// <summary>Waits for the server to end the connection; no further byte may arrive.</summary>
        public async Task ReadEndAsync()
        {
            using var cts = new CancellationTokenSource(Deadline);
            var buffer = new byte[256];
            int read;
            try
            {
                read = await _in.ReadAsync(buffer, cts.Token);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"the server did not end the connection within {Deadline.TotalSeconds} s");
            }
            catch (IOException)
            {
                return; // reset rather than closed: ended all the same
            }

            Assert.True(read == 0, $"expected the end of the connection, got {read} more bytes: {Convert.ToHexString(buffer, 0, Math.Min(read, 16))}");
        }

        /// <summary>Waits for the end of the connection, skipping whatever arrives before it.</summary>
        public async Task ReadUntilEndAsync()
        {
            using var cts = new CancellationTokenSource(Deadline);
            var buffer = new byte[4096];
            try
            {
                while (await _in.ReadAsync(buffer, cts.Token) > 0)
                {
                }
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"the server did not end the connection within {Deadline.TotalSeconds} s");
            }
            catch (IOException)
            {
                // reset: ended all the same
            }
        }

        public Task SendTextAsync(string text) => SendFrameAsync(OpText, Encoding.UTF8.GetBytes(text));

        public Task SendFrameAsync(int opcode, byte[] payload) => SendAsync(MaskedFrame(opcode, payload));

        /// <summary>One final, masked client frame.</summary>
        public static byte[] MaskedFrame(int opcode, byte[] payload) => ClientFrames.Masked(opcode, payload);

        /// <summary>Waits (with the deadline) until bytes have arrived that nobody has read.</summary>
        public async Task WaitUnreadAsync()
        {
            using var cts = new CancellationTokenSource(Deadline);
            while (_tcp.Available == 0)
            {
                await Task.Delay(5, cts.Token); // polls a condition, with a deadline
            }
        }

        /// <summary>
        /// Closes the socket itself, without the stream's orderly shutdown first (which would send
        /// a FIN before the reset): the server sees only the reset.
        /// </summary>
        public void CloseWithReset()
        {
            _tcp.Client.LingerState = new LingerOption(true, 0);
            _tcp.Client.Close();
        }

        /// <summary>Makes the next close a reset (RST) rather than an orderly end.</summary>
        public void Reset() => _tcp.Client.LingerState = new LingerOption(true, 0);

        public async ValueTask DisposeAsync()
        {
            await _in.DisposeAsync();
            _tcp.Dispose();
        }
    }
}
