using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using EngineIO;

namespace SocketIO.Tests.Server;

/// <summary>
/// The fast path's WebSocket (<see cref="PipeWebSocket"/>) over in-memory pipes, for what a socket
/// connection cannot stage at will: a write held up by a client that does not read (the output
/// pipe pauses at 64 bytes), control frames that come meanwhile, and cancellation.
/// </summary>
public sealed class PipeWebSocketTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    private sealed class Wire : IDuplexPipe
    {
        // client -> server, and server -> client (paused at 64 bytes unread)
        public Pipe ToServer { get; } = new(new PipeOptions(useSynchronizationContext: false));

        public Pipe ToClient { get; } = new(new PipeOptions(pauseWriterThreshold: 64, resumeWriterThreshold: 32, useSynchronizationContext: false));

        public PipeReader Input => ToServer.Reader;

        public PipeWriter Output => ToClient.Writer;

        public async Task SendAsync(byte[] frame)
        {
            await ToServer.Writer.WriteAsync(frame);
        }

        /// <summary>Reads one whole server frame: (opcode, payload).</summary>
        public async Task<(int Opcode, byte[] Payload)> ReadFrameAsync()
        {
            var reader = ToClient.Reader;
            while (true)
            {
                var read = await reader.ReadAsync().AsTask().WaitAsync(Deadline);
                var buffer = read.Buffer;
                if (buffer.Length >= 2)
                {
                    var head = buffer.Slice(0, Math.Min(buffer.Length, 10)).ToArray();
                    var (header, length) = (head[1] & 0x7F) switch
                    {
                        126 when head.Length >= 4 => (4, (head[2] << 8) | head[3]),
                        127 => (10, (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(head.AsSpan(2))),
                        var n and < 126 => (2, n),
                        _ => (-1, 0),
                    };
                    if (header > 0 && buffer.Length >= header + length)
                    {
                        var payload = buffer.Slice(header, length).ToArray();
                        reader.AdvanceTo(buffer.GetPosition(header + length));
                        return (head[0] & 0x0F, payload);
                    }
                }

                Assert.False(read.IsCompleted, "the server's side ended inside a frame");
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
    }

    private static byte[] DataFrame(int length)
    {
        var frame = new byte[WebSocketTransport.FrameLength(length)];
        WebSocketTransport.WriteFrame(frame, Encoding.ASCII.GetBytes(new string('d', length)), binary: false);
        return frame;
    }

    [Fact]
    public async Task APing_DuringAWriteTheClientDoesNotRead_IsAnsweredRightAfterThatWrite()
    {
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);

        // 300 bytes of data: the flush waits for the client to read
        var write = socket.SendFramesAsync(DataFrame(300)).AsTask();
        Assert.False(write.IsCompleted, "the write should wait for the client");

        await wire.SendAsync(ClientFrames.Frame(0x89, "ping?"u8.ToArray()));
        await wire.SendAsync(ClientFrames.Masked(0x1, "after"u8.ToArray()));
        var message = new byte[16];
        var received = await socket.ReceiveAsync(message.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Deadline);
        Assert.Equal("after", Encoding.ASCII.GetString(message, 0, received.Count));

        // the client reads: the data, then the pong, nothing in between or interleaved
        var data = await wire.ReadFrameAsync();
        Assert.Equal((0x1, 300), (data.Opcode, data.Payload.Length));
        var pong = await wire.ReadFrameAsync();
        Assert.Equal(0xA, pong.Opcode);
        Assert.Equal("ping?", Encoding.ASCII.GetString(pong.Payload));
        await write.WaitAsync(Deadline);
    }

    [Fact]
    public async Task ManyPings_DuringAWriteTheClientDoesNotRead_LeaveOnePendingPong_TheLatest()
    {
        // a client that stops reading and floods pings: RFC 6455 5.5.3 lets the server answer only
        // the most recent one, so at most one pong waits behind the write, whatever the count
        const int pings = 100_000;
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);
        var write = socket.SendFramesAsync(DataFrame(300)).AsTask();
        Assert.False(write.IsCompleted, "the write should wait for the client");

        var receive = socket.ReceiveAsync(new byte[16].AsMemory(), CancellationToken.None).AsTask();
        var pump = Task.Run(async () =>
        {
            for (var i = 0; i < pings; i++)
            {
                await wire.SendAsync(ClientFrames.Frame(0x89, Encoding.ASCII.GetBytes(i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
            }

            await wire.SendAsync(ClientFrames.Masked(0x1, "after"u8.ToArray()));
        });
        await pump.WaitAsync(TimeSpan.FromSeconds(60));
        var received = await receive.WaitAsync(Deadline);
        Assert.Equal(5, received.Count);
        Assert.Equal(1, socket.PendingControlFrames);

        // the client reads: the data, one pong with the latest payload, and nothing more
        var data = await wire.ReadFrameAsync();
        Assert.Equal((0x1, 300), (data.Opcode, data.Payload.Length));
        var pong = await wire.ReadFrameAsync();
        Assert.Equal(0xA, pong.Opcode);
        Assert.Equal((pings - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), Encoding.ASCII.GetString(pong.Payload));
        await write.WaitAsync(Deadline);
        Assert.Equal(0, socket.PendingControlFrames);
        Assert.False(wire.ToClient.Reader.TryRead(out var more) && !more.Buffer.IsEmpty, "nothing may follow the latest pong");
    }

    [Fact]
    public async Task PingsThenAClose_DuringAStuckWrite_GoOutAsOnePongThenTheCloseFrame()
    {
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);
        var write = socket.SendFramesAsync(DataFrame(300)).AsTask();
        await wire.SendAsync(ClientFrames.Frame(0x89, "a"u8.ToArray()));
        await wire.SendAsync(ClientFrames.Frame(0x89, "b"u8.ToArray()));
        await wire.SendAsync(ClientFrames.Masked(0x1, "x"u8.ToArray()));
        await socket.ReceiveAsync(new byte[4].AsMemory(), CancellationToken.None).AsTask().WaitAsync(Deadline);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).WaitAsync(Deadline);
        await wire.SendAsync(ClientFrames.Frame(0x89, "c"u8.ToArray())); // after our close frame: not answered
        await wire.SendAsync(ClientFrames.Masked(0x1, "y"u8.ToArray()));
        await socket.ReceiveAsync(new byte[4].AsMemory(), CancellationToken.None).AsTask().WaitAsync(Deadline);
        Assert.Equal(2, socket.PendingControlFrames);

        Assert.Equal(0x1, (await wire.ReadFrameAsync()).Opcode);
        var pong = await wire.ReadFrameAsync();
        Assert.Equal((0xA, "b"), (pong.Opcode, Encoding.ASCII.GetString(pong.Payload)));
        Assert.Equal(0x8, (await wire.ReadFrameAsync()).Opcode);
        await write.WaitAsync(Deadline);
        Assert.False(wire.ToClient.Reader.TryRead(out var more) && !more.Buffer.IsEmpty, "nothing may follow the close frame");
    }

    [Fact]
    public async Task AWrite_DuringAPongTheClientDoesNotRead_WaitsForIt_AndFollowsIt()
    {
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);

        // a pong of 125 bytes is over the pause threshold: its flush waits
        var ping = new byte[125];
        Array.Fill(ping, (byte)'p');
        await wire.SendAsync(ClientFrames.Frame(0x89, ping));
        await wire.SendAsync(ClientFrames.Masked(0x1, "x"u8.ToArray()));
        var receive = socket.ReceiveAsync(new byte[4].AsMemory(), CancellationToken.None).AsTask();

        var write = socket.SendFramesAsync(DataFrame(10)).AsTask();
        var pong = await wire.ReadFrameAsync();
        Assert.Equal(0xA, pong.Opcode);
        Assert.Equal(ping, pong.Payload);
        var data = await wire.ReadFrameAsync();
        Assert.Equal((0x1, 10), (data.Opcode, data.Payload.Length));
        await write.WaitAsync(Deadline);
        Assert.Equal(1, (await receive.WaitAsync(Deadline)).Count);
    }

    [Fact]
    public async Task AFrameAnnouncingMoreThanTheMaximum_IsRefusedWith1009_AtItsHeader()
    {
        // as ws does with maxPayload: the header alone decides, none of the payload is awaited
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire) { MaxMessageLength = 1000 };
        var header = new byte[14];
        header[0] = 0x81;
        header[1] = 0x80 | 127;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(header.AsSpan(2), 1UL << 30);
        await wire.SendAsync(header);
        var receive = socket.ReceiveAsync(new byte[16].AsMemory(), CancellationToken.None).AsTask();
        await Assert.ThrowsAsync<WebSocketException>(() => receive.WaitAsync(Deadline));
        var close = await wire.ReadFrameAsync();
        Assert.Equal(0x8, close.Opcode);
        Assert.Equal(1009, (close.Payload[0] << 8) | close.Payload[1]);
    }

    [Fact]
    public async Task Abort_EndsAWriteHeldUpByTheClient_AndAPendingReceive()
    {
        var wire = new Wire();
        var socket = new PipeWebSocket(wire);
        var write = socket.SendFramesAsync(DataFrame(300)).AsTask();
        var receive = socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).AsTask();
        Assert.False(write.IsCompleted || receive.IsCompleted);

        socket.Abort();
        await Assert.ThrowsAsync<WebSocketException>(() => write.WaitAsync(Deadline));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => receive.WaitAsync(Deadline));
        Assert.Equal(WebSocketState.Aborted, socket.State);
        await Assert.ThrowsAsync<WebSocketException>(() => socket.SendFramesAsync(DataFrame(1)).AsTask());
    }

    [Fact]
    public async Task CancelReceive_EndsTheWait_AndTheSocketStaysUsable()
    {
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);
        var wait = socket.WaitReadableAsync().AsTask();
        socket.CancelReceive();
        var result = await wait.WaitAsync(Deadline);
        Assert.Throws<OperationCanceledException>(() => socket.EndWait(result));

        // a later message still arrives
        await wire.SendAsync(ClientFrames.Masked(0x2, [1, 2, 3]));
        var buffer = new byte[8];
        var received = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Deadline);
        Assert.Equal((WebSocketMessageType.Binary, 3, true), (received.MessageType, received.Count, received.EndOfMessage));
        Assert.Equal(new byte[] { 1, 2, 3 }, buffer[..3]);
    }

    [Fact]
    public async Task AConnectionReset_IsAWebSocketException_ForAReceive_AndTheTransportsIOException_ForTheIdleWait()
    {
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);
        await wire.ToServer.Writer.CompleteAsync(new IOException("Connection reset by peer"));

        await Assert.ThrowsAsync<IOException>(async () => await socket.WaitReadableAsync());
        var ex = await Assert.ThrowsAsync<WebSocketException>(async () => await socket.ReceiveAsync(new byte[4].AsMemory(), CancellationToken.None));
        Assert.Equal(WebSocketError.ConnectionClosedPrematurely, ex.WebSocketErrorCode);
        Assert.IsType<IOException>(ex.InnerException);
        Assert.Equal(WebSocketState.Aborted, socket.State);
    }

    [Fact]
    public async Task CloseHandshake_StartedByTheServer_EndsInClosed_AndNoDataFollowsTheCloseFrame()
    {
        var wire = new Wire();
        using var socket = new PipeWebSocket(wire);
        await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).WaitAsync(Deadline);
        Assert.Equal(WebSocketState.CloseSent, socket.State);
        var close = await wire.ReadFrameAsync();
        Assert.Equal(0x8, close.Opcode);
        Assert.Equal(new byte[] { 0x03, 0xE8, (byte)'b', (byte)'y', (byte)'e' }, close.Payload);
        await Assert.ThrowsAsync<WebSocketException>(() => socket.SendFramesAsync(DataFrame(1)).AsTask());

        await wire.SendAsync(ClientFrames.Masked(0x8, [0x03, 0xE8]));
        var result = await socket.ReceiveAsync(Memory<byte>.Empty, CancellationToken.None).AsTask().WaitAsync(Deadline);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task AMaskedPayload_SplitAcrossReadsAtEveryOffset_IsUnmaskedRight()
    {
        var payload = Encoding.ASCII.GetBytes("42[\"the masking key rotates with every read\"]");
        var frame = ClientFrames.Masked(0x1, payload);
        for (var chunk = 1; chunk <= 7; chunk++)
        {
            var wire = new Wire();
            using var socket = new PipeWebSocket(wire);
            var received = new List<byte>();
            var buffer = new byte[3]; // a small buffer: the payload comes out in pieces too
            var pump = Task.Run(async () =>
            {
                for (var i = 0; i < frame.Length; i += chunk)
                {
                    await wire.SendAsync(frame[i..Math.Min(frame.Length, i + chunk)]);
                    await Task.Yield();
                }
            });
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None).AsTask().WaitAsync(Deadline);
                received.AddRange(buffer[..result.Count]);
                if (result.EndOfMessage)
                {
                    break;
                }
            }

            await pump;
            Assert.Equal(payload, received.ToArray());
        }
    }
}
