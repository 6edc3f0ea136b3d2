using System.Buffers.Binary;
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
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SocketIO.Tests.Protocol;

namespace SocketIO.Tests.Server;

/// <summary>
/// The WebSocket write path: our own framing of data frames (every queued packet of a session in
/// one write), the runtime WebSocket's control frames interleaved with it over the same stream,
/// the closing handshake after a forced close, the flush coalescing options, and the HTTP/2
/// fallback that sends frame by frame through the runtime WebSocket.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class WebSocketWriteTests
{
    private const int OpText = 0x1;
    private const int OpBinary = 0x2;
    private const int OpClose = 0x8;
    private const int OpPing = 0x9;
    private const int OpPong = 0xA;

    /// <summary>The WebSocket payload of <c>socket.Emit("e", s)</c> is <c>42["e","s"]</c>: 10 bytes plus s.</summary>
    private const int EventOverhead = 10;

    // ---- framing helpers (unit) ----

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 2)]
    [InlineData(125, 2)]
    [InlineData(126, 4)]
    [InlineData(127, 4)]
    [InlineData(65535, 4)]
    [InlineData(65536, 10)]
    [InlineData(70000, 10)]
    public void FrameLength_And_WriteFrame_LayOutAMinimalUnmaskedFinalFrame(int payloadLength, int headerLength)
    {
        Assert.Equal(headerLength + payloadLength, WebSocketTransport.FrameLength(payloadLength));
        var payload = Pattern(payloadLength, seed: payloadLength);
        foreach (var binary in new[] { false, true })
        {
            // a destination larger than the frame: nothing may be written past the frame
            var destination = new byte[headerLength + payloadLength + 16];
            destination.AsSpan().Fill(0xCC);
            var written = WebSocketTransport.WriteFrame(destination, payload, binary);

            Assert.Equal(headerLength + payloadLength, written);
            Assert.Equal(ExpectedHeader(payloadLength, binary), destination[..headerLength]);
            Assert.True(payload.AsSpan().SequenceEqual(destination.AsSpan(headerLength, payloadLength)), "the payload must follow the header unchanged");
            Assert.All(destination[written..], b => Assert.Equal(0xCC, b));

            // and exactly the frame's length is enough
            var exact = new byte[WebSocketTransport.FrameLength(payloadLength)];
            Assert.Equal(exact.Length, WebSocketTransport.WriteFrame(exact, payload, binary));
            Assert.Equal(destination[..written], exact);
        }
    }

    [Fact]
    public void AcceptKey_MatchesTheRfc6455Example()
    {
        // RFC 6455 section 1.3
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebSocketTransport.AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="));
    }

    [Fact]
    public async Task Handshake_OverHttp11_Answers101WithTheAcceptKeyOfTheRequest()
    {
        await using var server = await SioTestServer.StartAsync();

        // the raw client checks the status line, Upgrade, Connection and Sec-WebSocket-Accept itself
        await using var client = await RawFrameClient.ConnectAsync(server.Port, SioTestServer.Path + "?EIO=4&transport=websocket");
        Assert.Equal("websocket", client.ResponseHeaders["Upgrade"], ignoreCase: true);
        var open = await client.ReadFrameAsync();
        Assert.Equal(OpText, open.Opcode);
        Assert.StartsWith("0{", open.Text, StringComparison.Ordinal);
    }

    // ---- end to end: lengths, bursts, binary ----

    [Fact]
    public async Task EventsAtEveryLengthBoundary_ArriveIntactInOrder_EachInOneMinimalFrame_RawClient()
    {
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);
        int[] lengths = [10, 125, 126, 127, 65535, 65536, 200_000];
        foreach (var length in lengths)
        {
            client.Socket.Emit("e", Filler(length - EventOverhead, length));
        }

        foreach (var length in lengths)
        {
            var frame = await client.Frames.ReadFrameAsync();
            Assert.Equal(OpText, frame.Opcode);
            Assert.Equal(length, frame.Payload.Length);
            Assert.Equal(length < 126 ? 2 : length <= ushort.MaxValue ? 4 : 10, frame.HeaderLength);
            Assert.Equal($"42[\"e\",\"{Filler(length - EventOverhead, length)}\"]", frame.Text);
        }
    }

    [Fact]
    public async Task EventsAtEveryLengthBoundary_ArriveIntactInOrder_EachAsItsOwnMessage_ClientWebSocket()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;
        int[] lengths = [10, 125, 126, 65535, 65536, 200_000];
        foreach (var length in lengths)
        {
            socket.Emit("e", Filler(length - EventOverhead, length));
        }

        foreach (var length in lengths)
        {
            var text = await client.NextAsync();
            Assert.Equal(length, Encoding.UTF8.GetByteCount(text));
            Assert.Equal($"42[\"e\",\"{Filler(length - EventOverhead, length)}\"]", text);
        }
    }

    [Fact]
    public async Task Burst_5000EventsToOneSocket_ArriveInOrder_EachAsItsOwnMessage()
    {
        const int count = 5000;
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;

        for (var i = 0; i < count; i++)
        {
            socket.Emit("n", i);
        }

        socket.Emit("end");
        await ExpectNumberedAsync(client, count);
        await client.ExpectAsync("42[\"end\"]");
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task Burst_5000EventsToARoom_EveryMemberGetsAllInOrder_OthersNone()
    {
        const int count = 5000;
        await using var server = await SioTestServer.StartAsync();
        var members = new List<SioClient>();
        SioClient? outsider = null;
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var (client, socket) = await server.ConnectAsync();
                members.Add(client);
                socket.Join("room");
            }

            (outsider, _) = await server.ConnectAsync();

            for (var i = 0; i < count; i++)
            {
                server.Io.To("room").Emit("n", i);
            }

            server.Io.Emit("end");
            await Task.WhenAll(members.Select(async client =>
            {
                await ExpectNumberedAsync(client, count);
                await client.ExpectAsync("42[\"end\"]");
            }));
            await outsider.ExpectAsync("42[\"end\"]");
        }
        finally
        {
            foreach (var client in members)
            {
                await client.DisposeAsync();
            }

            if (outsider is not null)
            {
                await outsider.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Burst_OfMixedSizesAroundTheBatchLimit_ArrivesIntactInOrder()
    {
        // frame payloads around the header forms and around MaxBatchBytes (32 KiB per write), so
        // batches end in every way: full, cut before a frame that does not fit, a frame bigger than a batch
        var batch = WebSocketTransport.MaxBatchBytes;
        int[] lengths = [10, 11, 125, 126, 127, 1000, 8000, batch - 12, batch - 4, batch - 3, batch, batch + 1, 40_000, 65_535, 65_536, 100_000];
        const int rounds = 6;
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;

        for (var i = 0; i < lengths.Length * rounds; i++)
        {
            var length = lengths[i % lengths.Length];
            socket.Emit("e", Filler(length - EventOverhead, i));
        }

        for (var i = 0; i < lengths.Length * rounds; i++)
        {
            var length = lengths[i % lengths.Length];
            var text = await client.NextAsync();
            Assert.Equal($"42[\"e\",\"{Filler(length - EventOverhead, i)}\"]", text);
        }
    }

    [Fact]
    public async Task ConcurrentProducers_BroadcastingToARoom_EveryMemberGetsEveryEvent_EachProducerInOrder()
    {
        const int producers = 4;
        const int perProducer = 2000;
        await using var server = await SioTestServer.StartAsync();
        var clients = new List<SioClient>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                var (client, socket) = await server.ConnectAsync();
                clients.Add(client);
                socket.Join("room");
            }

            await Task.WhenAll(Enumerable.Range(0, producers).Select(p => Task.Run(() =>
            {
                for (var i = 0; i < perProducer; i++)
                {
                    server.Io.To("room").Emit("p", p, i);
                }
            }))).WaitAsync(SioTestServer.Deadline);

            await Task.WhenAll(clients.Select(async client =>
            {
                var next = new int[producers];
                for (var n = 0; n < producers * perProducer; n++)
                {
                    var packet = TextPacket.Parse(await client.NextAsync());
                    Assert.Equal("p", packet.Payload[0].GetString());
                    var producer = packet.Payload[1].GetInt32();
                    Assert.Equal(next[producer], packet.Payload[2].GetInt32());
                    next[producer]++;
                }
            }));
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task BinaryEvents_PlaceholderThenAttachments_InterleavedWithTextEvents_InOrderWithExactBytes()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;
        var small = Pattern(3, seed: 1);
        var medium = Pattern(300, seed: 2);
        var large = Pattern(70_000, seed: 3);

        socket.Emit("before", 1);
        socket.Emit("bin", small);
        socket.Emit("middle", "text");
        socket.Emit("two", medium, large);
        socket.Emit("after", 2);

        await client.ExpectAsync("42[\"before\",1]");
        await client.ExpectAsync("451-[\"bin\",{\"_placeholder\":true,\"num\":0}]");
        Assert.Equal(small, await client.NextBinaryAsync());
        await client.ExpectAsync("42[\"middle\",\"text\"]");
        await client.ExpectAsync("452-[\"two\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
        Assert.Equal(medium, await client.NextBinaryAsync());
        Assert.Equal(large, await client.NextBinaryAsync());
        await client.ExpectAsync("42[\"after\",2]");
    }

    [Fact]
    public async Task BinaryBurst_TextAndBinaryFramesInTheSameWrites_KeepTheirOpcodesAndOrder()
    {
        const int count = 300;
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);

        for (var i = 0; i < count; i++)
        {
            client.Socket.Emit("t", i);
            client.Socket.Emit("b", i, Pattern(i * 7 % 400, seed: i));
        }

        for (var i = 0; i < count; i++)
        {
            Assert.Equal($"42[\"t\",{i}]", await client.NextTextAsync());
            Assert.Equal($"451-[\"b\",{i},{{\"_placeholder\":true,\"num\":0}}]", await client.NextTextAsync());
            var attachment = await client.Frames.ReadFrameAsync();
            Assert.Equal(OpBinary, attachment.Opcode);
            Assert.Equal(Pattern(i * 7 % 400, seed: i), attachment.Payload);
        }
    }

    [Fact]
    public async Task Upgrade_PacketsQueuedDuringTheProbe_GoOutOverTheWebSocketFirstAndInOrder()
    {
        await using var server = await SioTestServer.StartAsync();
        var (engineSid, socket) = await server.ConnectOverPollingAsync();

        await using var ws = await RawWebSocket.ConnectAsync(server.WsUri($"&sid={engineSid}"));
        await ws.SendTextAsync("2probe");
        Assert.Equal("3probe", await ws.ReceiveTextAsync(SioTestServer.Deadline));

        // queued while the transport is being switched: no poll is pending, nothing is written yet
        for (var i = 0; i < 500; i++)
        {
            socket.Emit("n", i);
        }

        await ws.SendTextAsync("5");
        for (var i = 500; i < 1000; i++)
        {
            socket.Emit("n", i);
        }

        for (var i = 0; i < 1000; i++)
        {
            var message = await ws.ReceiveAnsweringPingsAsync();
            Assert.Equal($"42[\"n\",{i}]", message.Text);
        }

        Assert.Equal(EngineIOOptions.WebSocket, socket.Conn.Transport);
    }

    // ---- control frames between our data writes ----

    [Fact]
    public async Task PingsDuringABurst_AreAnsweredWithTheirPayloads_AndEveryDataFrameStaysIntact()
    {
        // 16 MB: more than the loopback socket buffers hold, so the server's data writes are still
        // pending (waiting for the client to read) when the pings arrive and the pongs go out
        const int count = 4000;
        var filler = Filler(4000, 0);
        await using var server = await SioTestServer.StartAsync(AllowBigBursts);
        await using var client = await RawSio.OpenAsync(server);
        var socket = client.Socket;

        var emitting = Task.Run(() =>
        {
            for (var i = 0; i < count; i++)
            {
                socket.Emit("n", i, filler);
            }
        });

        int[] pingAfter = [1, 2, 50, 500, 1500, 3000, 3999];
        var pings = new List<string>();
        var pongs = new List<string>();
        var next = 0;
        while (next < count || pongs.Count < pings.Count)
        {
            var frame = await client.Frames.ReadFrameAsync();
            if (frame.Opcode == OpPong)
            {
                pongs.Add(frame.Text);
                continue;
            }

            Assert.Equal(OpText, frame.Opcode);
            if (frame.Text == "2")
            {
                await client.Frames.SendTextAsync("3");
                continue;
            }

            Assert.Equal($"42[\"n\",{next},\"{filler}\"]", frame.Text);
            next++;
            if (pingAfter.Contains(next))
            {
                var payload = $"ping-{next}";
                pings.Add(payload);
                await client.Frames.SendFrameAsync(OpPing, Encoding.UTF8.GetBytes(payload));
            }
        }

        await emitting.WaitAsync(SioTestServer.Deadline);
        Assert.Equal(pings, pongs);

        // the session goes on normally
        socket.Emit("end");
        Assert.Equal("42[\"end\"]", await client.NextTextAsync());
        Assert.True(socket.Connected);
    }

    [Fact]
    public async Task ClientCloseFrame_EndsTheSessionAndTheConnection()
    {
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);
        var reason = new Signal<string>();
        client.Socket.OnDisconnect(reason.Set);

        await client.Frames.SendFrameAsync(OpClose, CloseBody(1000, "bye"));

        // nothing but (at most) a close frame before the end of the connection
        while (await client.Frames.ReadFrameOrEndAsync() is { } frame)
        {
            Assert.Equal(OpClose, frame.Opcode);
        }

        Assert.Equal("transport close", await reason.WaitAsync());
        Assert.False(client.Socket.Connected);
        Assert.Equal(0, server.Io.Engine.SessionCount);
    }

    [Fact]
    public async Task ClientCloseFrame_IsAnsweredWithACloseFrame()
    {
        // RFC 6455 section 5.5.1: an endpoint that receives a close frame and has not sent one
        // must send a close frame in response (usually echoing the status code)
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);

        await client.Frames.SendFrameAsync(OpClose, CloseBody(1000, "bye"));

        var frame = await client.Frames.ReadFrameAsync();
        Assert.Equal(OpClose, frame.Opcode);
        Assert.True(frame.Payload.Length >= 2, "the close frame should carry a status code");
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(frame.Payload));
        await client.Frames.ReadEndAsync();
    }

    [Fact]
    public async Task ClientCloseFrameDuringABurst_DataFramesStayWholeAndInOrder_NoneAfterACloseFrame()
    {
        const int count = 2000;
        var filler = Filler(4000, 1);
        await using var server = await SioTestServer.StartAsync(AllowBigBursts);
        await using var client = await RawSio.OpenAsync(server);
        var reason = new Signal<string>();
        client.Socket.OnDisconnect(reason.Set);
        for (var i = 0; i < count; i++)
        {
            client.Socket.Emit("n", i, filler);
        }

        // read a little of the burst, then close while the rest is still on its way
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal($"42[\"n\",{i},\"{filler}\"]", await client.NextTextAsync());
        }

        await client.Frames.SendFrameAsync(OpClose, CloseBody(1000, null));
        var next = 10;
        while (await client.Frames.ReadFrameOrEndAsync() is { } frame)
        {
            if (frame.Opcode == OpClose)
            {
                // after its close frame the server may send nothing more
                await client.Frames.ReadEndAsync();
                break;
            }

            // frames written before the close are fine, but whole and in order
            Assert.Equal(OpText, frame.Opcode);
            Assert.Equal($"42[\"n\",{next},\"{filler}\"]", frame.Text);
            next++;
        }

        Assert.Equal("transport close", await reason.WaitAsync());
    }

    [Fact]
    public async Task MessageOverMaxPayloadDuringABurst_The1009CloseFrameIsTheLastFrame()
    {
        const int count = 2000;
        var filler = Filler(4000, 3);
        await using var server = await SioTestServer.StartAsync(o =>
        {
            AllowBigBursts(o);
            o.Engine.MaxPayload = 1000;
        });
        await using var client = await RawSio.OpenAsync(server);
        var reason = new Signal<string>();
        client.Socket.OnDisconnect(reason.Set);
        for (var i = 0; i < count; i++)
        {
            client.Socket.Emit("n", i, filler);
        }

        Assert.Equal($"42[\"n\",0,\"{filler}\"]", await client.NextTextAsync());

        // the server answers 1009 through the runtime WebSocket while our data writes are pending
        await client.Frames.SendTextAsync("4" + new string('x', 2000));
        var next = 1;
        RawFrame? close = null;
        while (await client.Frames.ReadFrameOrEndAsync() is { } frame)
        {
            if (frame.Opcode == OpClose)
            {
                close = frame;
                break;
            }

            Assert.Equal(OpText, frame.Opcode);
            Assert.Equal($"42[\"n\",{next},\"{filler}\"]", frame.Text);
            next++;
        }

        Assert.NotNull(close);
        Assert.Equal((ushort)WebSocketCloseStatus.MessageTooBig, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));

        // no data frame after the close frame
        await client.Frames.ReadEndAsync();
        Assert.Equal("transport error", await reason.WaitAsync());
    }

    /// <summary>
    /// These bursts are queued whole before the client reads (8 to 16 MB): over the default byte
    /// budget of the send queue, which would close the session (SlowConsumerTests).
    /// </summary>
    private static void AllowBigBursts(SocketIOOptions o) => o.Engine.MaxBufferedBytes = 64 * 1024 * 1024;

    // ---- forced close ----

    [Fact]
    public async Task DisconnectWithClose_SendsTheEvents_ThenTheDisconnectPacket_ThenACloseFrame1000()
    {
        const int count = 300;
        var filler = Filler(1000, 2);
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);
        var reason = new Signal<string>();
        client.Socket.OnDisconnect(reason.Set);

        for (var i = 0; i < count; i++)
        {
            client.Socket.Emit("n", i, filler);
        }

        client.Socket.Disconnect(close: true);

        for (var i = 0; i < count; i++)
        {
            Assert.Equal($"42[\"n\",{i},\"{filler}\"]", await client.NextTextAsync());
        }

        Assert.Equal("41", await client.NextTextAsync());
        var close = await client.Frames.ReadFrameAsync();
        Assert.Equal(OpClose, close.Opcode);
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));

        // the client completes the closing handshake; the server then ends the connection
        await client.Frames.SendFrameAsync(OpClose, CloseBody(1000, null));
        await client.Frames.ReadEndAsync();
        Assert.Equal("server namespace disconnect", await reason.WaitAsync());
        Assert.Equal(0, server.Io.Engine.SessionCount);
    }

    [Fact]
    public async Task EngineSessionClose_SendsTheEvents_ThenACloseFrame_AndReasonIsForcedClose()
    {
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);
        var reason = new Signal<string>();
        client.Socket.OnDisconnect(reason.Set);

        for (var i = 0; i < 100; i++)
        {
            client.Socket.Emit("n", i);
        }

        client.Socket.Conn.Close();

        for (var i = 0; i < 100; i++)
        {
            Assert.Equal($"42[\"n\",{i}]", await client.NextTextAsync());
        }

        var close = await client.Frames.ReadFrameAsync();
        Assert.Equal(OpClose, close.Opcode);
        Assert.Equal(1000, BinaryPrimitives.ReadUInt16BigEndian(close.Payload));
        await client.Frames.SendFrameAsync(OpClose, CloseBody(1000, null));
        await client.Frames.ReadEndAsync();
        Assert.Equal(EngineCloseReason.ForcedClose, await reason.WaitAsync());
    }

    [Fact]
    public async Task ForcedClose_ClientNeverAnswersTheCloseFrame_TheServerStillEndsTheConnection()
    {
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);
        var reason = new Signal<string>();
        client.Socket.OnDisconnect(reason.Set);

        client.Socket.Emit("last");
        client.Socket.Conn.Close();

        Assert.Equal("42[\"last\"]", await client.NextTextAsync());
        var close = await client.Frames.ReadFrameAsync();
        Assert.Equal(OpClose, close.Opcode);

        // no answer: the server gives up waiting (1 s) and closes the connection
        await client.Frames.ReadEndAsync();
        Assert.Equal(EngineCloseReason.ForcedClose, await reason.WaitAsync());
    }

    [Fact]
    public async Task AfterAForcedClose_LaterEmitsAreNotWrittenAfterTheCloseFrame()
    {
        await using var server = await SioTestServer.StartAsync();
        await using var client = await RawSio.OpenAsync(server);
        var socket = client.Socket;

        socket.Emit("first");
        socket.Conn.Close();
        Assert.Equal("42[\"first\"]", await client.NextTextAsync());
        var close = await client.Frames.ReadFrameAsync();
        Assert.Equal(OpClose, close.Opcode);

        // the session is still open until the client answers: these are queued, never written
        socket.Emit("late", 1);
        socket.Emit("late", 2);
        await client.Frames.SendFrameAsync(OpClose, CloseBody(1000, null));
        await client.Frames.ReadEndAsync();
    }

    // ---- options ----

    [Theory]
    [InlineData(0, 20)]
    [InlineData(16, 0)]
    [InlineData(0, 0)]
    [InlineData(int.MaxValue, 20)]
    public async Task AnyValidFlushCoalescing_DeliversABurstInOrder(int maxDeferrals, int maxDelayMs)
    {
        const int count = 3000;
        await using var server = await SioTestServer.StartAsync(o =>
        {
            o.Engine.MaxFlushDeferrals = maxDeferrals;
            o.Engine.MaxFlushDelay = TimeSpan.FromMilliseconds(maxDelayMs);
        });
        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;
        var (other, otherSocket) = await server.ConnectAsync();
        await using var _o = other;

        // from several threads at once, each to its own socket
        await Task.WhenAll(
            Task.Run(() =>
            {
                for (var i = 0; i < count; i++)
                {
                    socket.Emit("n", i);
                }
            }),
            Task.Run(() =>
            {
                for (var i = 0; i < count; i++)
                {
                    otherSocket.Emit("n", i);
                }
            })).WaitAsync(SioTestServer.Deadline);

        await Task.WhenAll(ExpectNumberedAsync(client, count), ExpectNumberedAsync(other, count));
    }

    [Fact]
    public void NegativeMaxFlushDeferrals_FailsServerConstruction()
    {
        var options = new SocketIOOptions();
        options.Engine.MaxFlushDeferrals = -1;
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SocketIOServer(options));
        Assert.Equal(nameof(EngineIOOptions.MaxFlushDeferrals), ex.ParamName);

        var engine = new EngineIOOptions { MaxFlushDeferrals = -1 };
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineIOServer(engine, new NoHandler()));
        Assert.Equal(nameof(EngineIOOptions.MaxFlushDeferrals), ex.ParamName);
    }

    [Theory]
    [InlineData(0L, 30.0, nameof(EngineIOOptions.MaxBufferedBytes))]
    [InlineData(-1L, 30.0, nameof(EngineIOOptions.MaxBufferedBytes))]
    [InlineData(1024L, 0.0, nameof(EngineIOOptions.WriteTimeout))]
    [InlineData(1024L, -1.0, nameof(EngineIOOptions.WriteTimeout))]
    public void ANonPositiveByteBudgetOrWriteTimeout_FailsServerConstruction(long maxBufferedBytes, double writeTimeoutSeconds, string key)
    {
        var engine = new EngineIOOptions { MaxBufferedBytes = maxBufferedBytes, WriteTimeout = TimeSpan.FromSeconds(writeTimeoutSeconds) };
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineIOServer(engine, new NoHandler()));
        Assert.Equal(key, ex.ParamName);
    }

    [Fact]
    public void NegativeMaxFlushDelay_FailsServerConstruction()
    {
        var options = new SocketIOOptions();
        options.Engine.MaxFlushDelay = TimeSpan.FromMilliseconds(-1);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SocketIOServer(options));
        Assert.Equal(nameof(EngineIOOptions.MaxFlushDelay), ex.ParamName);

        var engine = new EngineIOOptions { MaxFlushDelay = TimeSpan.FromMilliseconds(-1) };
        ex = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineIOServer(engine, new NoHandler()));
        Assert.Equal(nameof(EngineIOOptions.MaxFlushDelay), ex.ParamName);
    }

    [Fact]
    public void ZeroFlushCoalescing_IsAccepted()
    {
        var engine = new EngineIOOptions { MaxFlushDeferrals = 0, MaxFlushDelay = TimeSpan.Zero };
        var server = new EngineIOServer(engine, new NoHandler());
        Assert.Equal(0, server.Options.MaxFlushDeferrals);
    }

    // ---- HTTP/2 WebSockets (extended CONNECT): the runtime WebSocket, frame by frame ----

    [Fact]
    public async Task Http2WebSocket_Handshake_OpensASession_AndEventsArriveIntact()
    {
        await using var host = await Http2Host.StartAsync();

        // a WebSocket-only client over HTTP/2: its handshake is a CONNECT, not a GET
        await using var ws = await H2Client.ConnectAsync(host.WsUri());
        var open = await ws.ReceiveTextAsync();
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        await ws.SendTextAsync("40");
        var connect = await ws.ReceiveTextAsync();
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        using var reply = JsonDocument.Parse(connect[2..]);
        var socket = await host.SocketAsync(reply.RootElement.GetProperty("sid").GetString()!);

        await ExerciseHttp2WebSocketAsync(ws, socket);
    }

    [Fact]
    public async Task Http2WebSocket_UpgradedFromPolling_EventsOfEverySizeBurstsBinaryAndForcedClose_ArriveIntact()
    {
        await using var host = await Http2Host.StartAsync();
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false })
        {
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = SioTestServer.Deadline,
        };
        var open = await http.GetStringAsync(host.PollingUri(string.Empty));
        Assert.StartsWith("0{", open, StringComparison.Ordinal);
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
            Assert.Equal("websocket", json.RootElement.GetProperty("upgrades")[0].GetString());
        }

        using (var post = await http.PostAsync(host.PollingUri($"&sid={engineSid}"), new StringContent("40")))
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            Assert.Equal(HttpVersion.Version20, post.Version);
        }

        var connect = await http.GetStringAsync(host.PollingUri($"&sid={engineSid}"));
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        using var reply = JsonDocument.Parse(connect[2..]);
        var socket = await host.SocketAsync(reply.RootElement.GetProperty("sid").GetString()!);

        // the upgrade request carries the sid: an HTTP/2 CONNECT, accepted by the runtime WebSocket
        await using var ws = await H2Client.ConnectAsync(host.WsUri($"&sid={engineSid}"));
        await ws.SendTextAsync("2probe");
        Assert.Equal("3probe", await ws.ReceiveTextAsync());
        socket.Emit("queued during the probe");
        await ws.SendTextAsync("5");
        Assert.Equal("42[\"queued during the probe\"]", await ws.ReceiveTextAsync());

        await ExerciseHttp2WebSocketAsync(ws, socket);
    }

    /// <summary>
    /// Events at every frame-length boundary, a burst (several frames per batch, unpacked and sent
    /// one by one) with a binary attachment inside it, then a forced close.
    /// </summary>
    private static async Task ExerciseHttp2WebSocketAsync(H2Client ws, SocketIOSocket socket)
    {
        int[] lengths = [10, 125, 126, 65535, 65536, 200_000];
        foreach (var length in lengths)
        {
            socket.Emit("e", Filler(length - EventOverhead, length));
        }

        foreach (var length in lengths)
        {
            Assert.Equal($"42[\"e\",\"{Filler(length - EventOverhead, length)}\"]", await ws.ReceiveTextAsync());
        }

        var bytes = Pattern(70_000, seed: 9);
        for (var i = 0; i < 2000; i++)
        {
            socket.Emit("n", i);
            if (i == 1000)
            {
                socket.Emit("bin", bytes);
            }
        }

        for (var i = 0; i < 2000; i++)
        {
            Assert.Equal($"42[\"n\",{i}]", await ws.ReceiveTextAsync());
            if (i == 1000)
            {
                Assert.Equal("451-[\"bin\",{\"_placeholder\":true,\"num\":0}]", await ws.ReceiveTextAsync());
                var binary = await ws.ReceiveAsync();
                Assert.False(binary.IsText, $"expected a binary frame, got {binary}");
                Assert.Equal(bytes, binary.Binary);
            }
        }

        // a forced close: the disconnect packet, then the closing handshake
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);
        socket.Emit("last");
        socket.Disconnect(close: true);
        Assert.Equal("42[\"last\"]", await ws.ReceiveTextAsync());
        Assert.Equal("41", await ws.ReceiveTextAsync());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, await ws.ReceiveCloseAsync());
        Assert.Equal("server namespace disconnect", await reason.WaitAsync());
    }

    // ---- helpers ----

    private static async Task ExpectNumberedAsync(SioClient client, int count)
    {
        for (var i = 0; i < count; i++)
        {
            await client.ExpectAsync($"42[\"n\",{i}]");
        }
    }

    /// <summary>ASCII letters that differ from one position and one seed to the next (no JSON escaping).</summary>
    private static string Filler(int length, int seed) =>
        string.Create(length, seed, static (span, s) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = (char)('a' + ((i * 7) + s) % 26);
            }
        });

    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 31) + (seed * 17) + (i >> 8));
        }

        return bytes;
    }

    private static byte[] ExpectedHeader(int length, bool binary)
    {
        var first = (byte)(binary ? 0x82 : 0x81);
        if (length < 126)
        {
            return [first, (byte)length];
        }

        if (length <= ushort.MaxValue)
        {
            return [first, 126, (byte)(length >> 8), (byte)length];
        }

        return [first, 127, 0, 0, 0, 0, (byte)(length >> 24), (byte)(length >> 16), (byte)(length >> 8), (byte)length];
    }

    private static byte[] CloseBody(ushort status, string? reason)
    {
        var body = new byte[2 + (reason is null ? 0 : Encoding.UTF8.GetByteCount(reason))];
        BinaryPrimitives.WriteUInt16BigEndian(body, status);
        if (reason is not null)
        {
            Encoding.UTF8.GetBytes(reason, body.AsSpan(2));
        }

        return body;
    }

    private sealed class NoHandler : IEngineHandler
    {
        public void OnOpen(EngineSession session)
        {
        }

        public void OnMessage(EngineSession session, EngineMessage message)
        {
        }

        public void OnClose(EngineSession session, string reason)
        {
        }
    }

    /// <summary>A raw WebSocket client connected to "/" of a test server, with its server-side socket.</summary>
    private sealed class RawSio : IAsyncDisposable
    {
        private RawSio(RawFrameClient frames, SocketIOSocket socket)
        {
            Frames = frames;
            Socket = socket;
        }

        public RawFrameClient Frames { get; }

        public SocketIOSocket Socket { get; }

        public static async Task<RawSio> OpenAsync(SioTestServer server)
        {
            var frames = await RawFrameClient.ConnectAsync(server.Port, SioTestServer.Path + "?EIO=4&transport=websocket");
            try
            {
                var open = await frames.ReadFrameAsync();
                Assert.Equal(OpText, open.Opcode);
                Assert.StartsWith("0{", open.Text, StringComparison.Ordinal);
                string engineSid;
                using (var json = JsonDocument.Parse(open.Text[1..]))
                {
                    engineSid = json.RootElement.GetProperty("sid").GetString()!;
                }

                await frames.SendTextAsync("40");
                var connect = await frames.ReadFrameAsync();
                Assert.Equal(OpText, connect.Opcode);
                Assert.StartsWith("40{", connect.Text, StringComparison.Ordinal);
                using var reply = JsonDocument.Parse(connect.Text[2..]);
                var socket = await server.SocketAsync(engineSid, reply.RootElement.GetProperty("sid").GetString()!);
                return new RawSio(frames, socket);
            }
            catch
            {
                await frames.DisposeAsync();
                throw;
            }
        }

        /// <summary>The next text frame other than an Engine.IO PING (answered).</summary>
        public async Task<string> NextTextAsync()
        {
            while (true)
            {
                var frame = await Frames.ReadFrameAsync();
                Assert.True(frame.Opcode == OpText, $"expected a text frame, got opcode 0x{frame.Opcode:X}");
                if (frame.Text == "2")
                {
                    await Frames.SendTextAsync("3");
                    continue;
                }

                return frame.Text;
            }
        }

        public ValueTask DisposeAsync() => Frames.DisposeAsync();
    }

    /// <summary>One frame as it came off the wire.</summary>
    private sealed record RawFrame(int Opcode, byte[] Payload, int HeaderLength)
    {
        private static readonly UTF8Encoding s_strictUtf8 = new(false, true);

        /// <summary>The payload as UTF-8; throws on invalid UTF-8.</summary>
        public string Text => s_strictUtf8.GetString(Payload);
    }

    /// <summary>
    /// A minimal RFC 6455 client over a TCP connection: does the HTTP/1.1 upgrade itself, sends
    /// masked frames of any opcode, and reads the server's frames one by one, checking each header
    /// strictly (final, no RSV bits, known opcode, unmasked, minimal length encoding), so that a
    /// frame written wrong or two writes interleaved show as a bad opcode or length.
    /// </summary>
    private sealed class RawFrameClient : IAsyncDisposable
    {
        private const int MaxFrame = 16 * 1024 * 1024;
        private readonly TcpClient _tcp;
        private readonly NetworkStream _net;
        private readonly BufferedStream _in;
        private readonly SemaphoreSlim _sendLock = new(1, 1);

        private RawFrameClient(TcpClient tcp, NetworkStream net, BufferedStream input, Dictionary<string, string> headers)
        {
            _tcp = tcp;
            _net = net;
            _in = input;
            ResponseHeaders = headers;
        }

        public IReadOnlyDictionary<string, string> ResponseHeaders { get; }

        public static async Task<RawFrameClient> ConnectAsync(int port, string pathAndQuery)
        {
            var tcp = new TcpClient { NoDelay = true };
            try
            {
                using var cts = new CancellationTokenSource(SioTestServer.Deadline);
                await tcp.ConnectAsync(IPAddress.Loopback, port, cts.Token);
                var net = tcp.GetStream();
                var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
                var request = $"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
                await net.WriteAsync(Encoding.ASCII.GetBytes(request), cts.Token);

                var input = new BufferedStream(net, 64 * 1024);
                var head = await ReadHeadAsync(input, cts.Token);
                var lines = head.Split("\r\n");
                Assert.StartsWith("HTTP/1.1 101", lines[0], StringComparison.Ordinal);
                var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                foreach (var line in lines.Skip(1))
                {
                    var colon = line.IndexOf(':', StringComparison.Ordinal);
                    headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                }

                Assert.Equal("websocket", headers["Upgrade"], ignoreCase: true);
                Assert.Contains("upgrade", headers["Connection"], StringComparison.OrdinalIgnoreCase);
                var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
                Assert.Equal(expected, headers["Sec-WebSocket-Accept"]);
                return new RawFrameClient(tcp, net, input, headers);
            }
            catch
            {
                tcp.Dispose();
                throw;
            }
        }

        private static async Task<string> ReadHeadAsync(Stream input, CancellationToken ct)
        {
            var head = new List<byte>();
            var one = new byte[1];
            while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
            {
                Assert.True(head.Count < 16 * 1024, "response head too long");
                await input.ReadExactlyAsync(one, ct);
                head.Add(one[0]);
            }

            return Encoding.ASCII.GetString([.. head])[..^4];
        }

        /// <summary>The next frame; fails on a malformed header, a timeout or the end of the connection.</summary>
        public async Task<RawFrame> ReadFrameAsync()
        {
            using var cts = new CancellationTokenSource(SioTestServer.Deadline);
            try
            {
                var head = new byte[2];
                await _in.ReadExactlyAsync(head, cts.Token);
                var opcode = head[0] & 0x0F;
                Assert.True((head[0] & 0x70) == 0, $"RSV bits set in 0x{head[0]:X2}");
                Assert.True(opcode is OpText or OpBinary or OpClose or OpPing or OpPong, $"bad opcode 0x{opcode:X}");
                // the server never fragments: every frame is final
                Assert.True((head[0] & 0x80) != 0, $"a non-final frame, 0x{head[0]:X2}");
                Assert.True((head[1] & 0x80) == 0, "a server frame must not be masked");
                long length = head[1] & 0x7F;
                var headerLength = 2;
                if (length == 126)
                {
                    var ext = new byte[2];
                    await _in.ReadExactlyAsync(ext, cts.Token);
                    length = BinaryPrimitives.ReadUInt16BigEndian(ext);
                    headerLength = 4;
                    Assert.True(length >= 126, $"16-bit length {length} should have been 7-bit");
                }
                else if (length == 127)
                {
                    var ext = new byte[8];
                    await _in.ReadExactlyAsync(ext, cts.Token);
                    var big = BinaryPrimitives.ReadUInt64BigEndian(ext);
                    Assert.True(big is > ushort.MaxValue and <= MaxFrame, $"64-bit length {big} is corrupt or not minimal");
                    length = (long)big;
                    headerLength = 10;
                }

                if (opcode >= OpClose)
                {
                    Assert.True(length <= 125, $"control frame with a {length}-byte payload");
                }

                var payload = new byte[length];
                await _in.ReadExactlyAsync(payload, cts.Token);
                return new RawFrame(opcode, payload, headerLength);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"no WebSocket frame within {SioTestServer.Deadline.TotalMilliseconds} ms");
            }
            catch (Exception ex) when (ex is EndOfStreamException or IOException)
            {
                throw new InvalidOperationException($"the connection ended before the expected frame: {ex.Message}", ex);
            }
        }

        /// <summary>
        /// The next frame, or null when the connection ends (closed or reset) before a whole frame
        /// arrived; a malformed header still fails.
        /// </summary>
        public async Task<RawFrame?> ReadFrameOrEndAsync()
        {
            try
            {
                return await ReadFrameAsync();
            }
            catch (InvalidOperationException ex) when (ex.InnerException is EndOfStreamException or IOException)
            {
                return null;
            }
        }

        /// <summary>Waits for the server to end the connection; no further byte may arrive.</summary>
        public async Task ReadEndAsync()
        {
            using var cts = new CancellationTokenSource(SioTestServer.Deadline);
            var buffer = new byte[256];
            int read;
            try
            {
                read = await _in.ReadAsync(buffer, cts.Token);
            }
            catch (OperationCanceledException) when (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"the server did not end the connection within {SioTestServer.Deadline.TotalMilliseconds} ms");
            }
            catch (IOException)
            {
                // reset rather than closed: ended all the same
                return;
            }

            Assert.True(read == 0, $"expected the end of the connection, got {read} more bytes: {Convert.ToHexString(buffer, 0, Math.Min(read, 16))}");
        }

        public Task SendTextAsync(string text) => SendFrameAsync(OpText, Encoding.UTF8.GetBytes(text));

        /// <summary>Sends one final, masked frame.</summary>
        public async Task SendFrameAsync(int opcode, byte[] payload)
        {
            var frame = ClientFrames.Masked(opcode, payload);
            using var cts = new CancellationTokenSource(SioTestServer.Deadline);
            await _sendLock.WaitAsync(cts.Token);
            try
            {
                await _net.WriteAsync(frame, cts.Token);
            }
            finally
            {
                _sendLock.Release();
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _in.DisposeAsync();
            _tcp.Dispose();
            _sendLock.Dispose();
        }
    }

    /// <summary>A Socket.IO server whose only Kestrel endpoint speaks HTTP/2 over cleartext (prior knowledge).</summary>
    private sealed class Http2Host : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly TaskCompletionSource<SocketIOSocket> _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private Http2Host(WebApplication app, int port)
        {
            _app = app;
            Port = port;
            app.Services.GetRequiredService<SocketIOServer>().Sockets.OnConnection(socket => _connected.TrySetResult(socket));
        }

        public int Port { get; }

        public Uri WsUri(string query = "") => new($"ws://127.0.0.1:{Port}{SioTestServer.Path}?EIO=4&transport=websocket{query}");

        public Uri PollingUri(string query) => new($"http://127.0.0.1:{Port}{SioTestServer.Path}?EIO=4&transport=polling{query}");

        public static async Task<Http2Host> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
            builder.Services.AddSocketIO();
            var app = builder.Build();
            app.UseWebSockets();
            app.MapSocketIO("/socket.io");
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new Http2Host(app, new Uri(address).Port);
        }

        public async Task<SocketIOSocket> SocketAsync(string id)
        {
            var socket = await _connected.Task.WaitAsync(SioTestServer.Deadline);
            Assert.Equal(id, socket.Id);
            return socket;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    /// <summary>A ClientWebSocket over HTTP/2 (RFC 8441 extended CONNECT), reading with a deadline.</summary>
    private sealed class H2Client : IAsyncDisposable
    {
        private readonly ClientWebSocket _ws;
        private readonly HttpMessageInvoker _invoker;

        private H2Client(ClientWebSocket ws, HttpMessageInvoker invoker)
        {
            _ws = ws;
            _invoker = invoker;
        }

        public static async Task<H2Client> ConnectAsync(Uri uri)
        {
            var ws = new ClientWebSocket();
            ws.Options.HttpVersion = HttpVersion.Version20;
            ws.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            ws.Options.KeepAliveInterval = TimeSpan.Zero;
            ws.Options.CollectHttpResponseDetails = true;
            var invoker = new HttpMessageInvoker(new SocketsHttpHandler { UseProxy = false });
            try
            {
                using var cts = new CancellationTokenSource(SioTestServer.Deadline);
                await ws.ConnectAsync(uri, invoker, cts.Token);

                // an HTTP/1.1 upgrade answers 101; an HTTP/2 extended CONNECT answers 200
                Assert.Equal(HttpStatusCode.OK, ws.HttpStatusCode);
                return new H2Client(ws, invoker);
            }
            catch
            {
                ws.Dispose();
                invoker.Dispose();
                throw;
            }
        }

        public async Task SendTextAsync(string text)
        {
            using var cts = new CancellationTokenSource(SioTestServer.Deadline);
            await _ws.SendAsync(Encoding.UTF8.GetBytes(text).AsMemory(), WebSocketMessageType.Text, true, cts.Token);
        }

        public async Task<WsMessage> ReceiveAsync()
        {
            using var cts = new CancellationTokenSource(SioTestServer.Deadline);
            using var message = new MemoryStream();
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var result = await _ws.ReceiveAsync(buffer.AsMemory(), cts.Token);
                Assert.NotEqual(WebSocketMessageType.Close, result.MessageType);
                message.Write(buffer, 0, result.Count);
                if (result.EndOfMessage)
                {
                    return result.MessageType == WebSocketMessageType.Text
                        ? new WsMessage(Encoding.UTF8.GetString(message.ToArray()), null)
                        : new WsMessage(null, message.ToArray());
                }
            }
        }

        /// <summary>The next message, a text one; Engine.IO PINGs are answered.</summary>
        public async Task<string> ReceiveTextAsync()
        {
            while (true)
            {
                var message = await ReceiveAsync();
                Assert.True(message.IsText, $"expected a text message, got {message}");
                if (message.Text == "2")
                {
                    await SendTextAsync("3");
                    continue;
                }

                return message.Text!;
            }
        }

        /// <summary>The server's close frame; answers it.</summary>
        public async Task<WebSocketCloseStatus?> ReceiveCloseAsync()
        {
            using var cts = new CancellationTokenSource(SioTestServer.Deadline);
            var result = await _ws.ReceiveAsync(new ArraySegment<byte>(new byte[1024]), cts.Token);
            Assert.Equal(WebSocketMessageType.Close, result.MessageType);
            await _ws.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
            return result.CloseStatus;
        }

        public ValueTask DisposeAsync()
        {
            _ws.Abort();
            _ws.Dispose();
            _invoker.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
