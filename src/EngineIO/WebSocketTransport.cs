using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Timeouts;

namespace EngineIO;

/// <summary>
/// A server WebSocket whose outgoing data frames we frame ourselves, so that all the packets a
/// session has queued go out in ONE write and one flush (one send system call), where
/// <see cref="WebSocket.SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, bool, CancellationToken)"/>
/// writes and flushes each frame on its own. Receiving, control frames (ping/pong/close) and the
/// closing handshake stay with the runtime's <see cref="WebSocket"/>, created over a stream that
/// serialises its writes with ours, so frames never interleave.
/// </summary>
internal sealed class WebSocketTransport : IDisposable
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>How many bytes of queued frames one write carries at most.</summary>
    internal const int MaxBatchBytes = 32 * 1024;

    private readonly SerializedStream? _stream;
    private readonly object? _connection; // the HttpContext or the ConnectionContext under the socket, for Abort

    private WebSocketTransport(WebSocket socket, SerializedStream? stream, object? connection)
    {
        Socket = socket;
        _stream = stream;
        _connection = connection;
    }

    /// <summary>The runtime WebSocket: receive, close, abort.</summary>
    public WebSocket Socket { get; }

    /// <summary>
    /// Completes the handshake of a WebSocket request. HTTP/1.1 upgrades (every Engine.IO client)
    /// get our batched framing; anything else (HTTP/2 extended CONNECT) the runtime WebSocket as is.
    /// </summary>
    public static async Task<WebSocketTransport> AcceptAsync(HttpContext context)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        if (upgrade is null || !upgrade.IsUpgradableRequest || key.Length == 0)
        {
            return new WebSocketTransport(await context.WebSockets.AcceptWebSocketAsync(), null, context);
        }

        var headers = context.Response.Headers;
        headers.Connection = "Upgrade";
        headers.Upgrade = "websocket";
        headers.SecWebSocketAccept = AcceptKey(key);
        context.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();
        // Engine.IO has its own heartbeat: no keep-alive timer per connection
        return Create(await upgrade.UpgradeAsync(), context);
    }

    /// <summary>A server WebSocket over an upgraded connection the caller has answered with 101.</summary>
    internal static WebSocketTransport Create(Stream upgraded, HttpContext? context = null)
    {
        var stream = new SerializedStream(upgraded);
        var socket = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = TimeSpan.Zero,
        });
        return new WebSocketTransport(socket, stream, context);
    }

    /// <summary>A server WebSocket directly over the pipes of a connection the caller has answered with 101.</summary>
    internal static WebSocketTransport Create(ConnectionContext connection) => new(new PipeWebSocket(connection.Transport), null, connection);

    /// <summary>
    /// Cuts the connection: the socket is aborted and so is the connection under it, which ends a
    /// write the client holds up by not reading (aborting the socket alone leaves that write, and
    /// the connection with the bytes it holds, to the client's goodwill).
    /// </summary>
    public void Abort()
    {
        Socket.Abort();
        switch (_connection)
        {
            case ConnectionContext connection:
                connection.Abort(new ConnectionAbortedException("The WebSocket session was aborted."));
                break;
            case HttpContext context:
                context.Abort();
                break;
        }
    }

    /// <summary>
    /// Ends a pending receive with <see cref="OperationCanceledException"/> where the token given to
    /// the receive does not (the pipe WebSocket); the runtime WebSocket is ended by that token.
    /// </summary>
    public void CancelReceive() => (Socket as PipeWebSocket)?.CancelReceive();

    internal static string AcceptKey(string key)
    {
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid), hash);
        return Convert.ToBase64String(hash);
    }

    /// <summary>The length of a server (unmasked) frame carrying <paramref name="payload"/> bytes.</summary>
    internal static int FrameLength(int payload) => payload + (payload < 126 ? 2 : payload <= ushort.MaxValue ? 4 : 10);

    /// <summary>Writes one unmasked, final frame (header and payload); returns its length.</summary>
    internal static int WriteFrame(Span<byte> destination, ReadOnlySpan<byte> payload, bool binary) =>
        WriteFrame(destination, payload, binary ? 0x2 : 0x1);

    /// <summary>Writes one unmasked, final frame of any opcode (a control frame too); returns its length.</summary>
    internal static int WriteFrame(Span<byte> destination, ReadOnlySpan<byte> payload, int opcode)
    {
        destination[0] = (byte)(0x80 | opcode);
        int header;
        if (payload.Length < 126)
        {
            destination[1] = (byte)payload.Length;
            header = 2;
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            destination[1] = 126;
            BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)payload.Length);
            header = 4;
        }
        else
        {
            destination[1] = 127;
            BinaryPrimitives.WriteUInt64BigEndian(destination[2..], (ulong)payload.Length);
            header = 10;
        }

        payload.CopyTo(destination[header..]);
        return header + payload.Length;
    }

    /// <summary>
    /// Sends whole frames already laid out by <c>WriteFrame</c>, in one write. Throws
    /// <see cref="WebSocketException"/> once a close frame has gone out (no data may follow it).
    /// </summary>
    public ValueTask SendFramesAsync(ReadOnlyMemory<byte> frames) =>
        Socket is PipeWebSocket pipe ? pipe.SendFramesAsync(frames)
        : _stream is null ? SendOneByOneAsync(frames) : _stream.WriteDataAsync(frames);

    // the runtime WebSocket only sends a frame at a time: unpack the batch
    private async ValueTask SendOneByOneAsync(ReadOnlyMemory<byte> frames)
    {
        while (frames.Length > 0)
        {
            var span = frames.Span;
            var binary = (span[0] & 0x0F) == 0x2;
            var (header, length) = (span[1] & 0x7F) switch
            {
                126 => (4, (int)BinaryPrimitives.ReadUInt16BigEndian(span[2..])),
                127 => (10, (int)BinaryPrimitives.ReadUInt64BigEndian(span[2..])),
                var n => (2, (int)n),
            };
            await Socket.SendAsync(frames.Slice(header, length), binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, true, CancellationToken.None);
            frames = frames[(header + length)..];
        }
    }

    public void Dispose() => Socket.Dispose();

    /// <summary>
    /// The upgraded connection as the runtime WebSocket sees it: reads pass through; its writes
    /// (control frames) and our data batches take turns, and data stops after a close frame.
    /// </summary>
    private sealed class SerializedStream(Stream inner) : AsyncDuplexStream
    {
        private readonly SemaphoreSlim _writeLock = new(1, 1);
        private volatile bool _closeSent;

        public async ValueTask WriteDataAsync(ReadOnlyMemory<byte> frames)
        {
            await _writeLock.WaitAsync();
            try
            {
                if (_closeSent)
                {
                    throw new WebSocketException(WebSocketError.InvalidState, "The WebSocket close frame has been sent.");
                }

                await inner.WriteAsync(frames);
            }
            finally
            {
                _writeLock.Release();
            }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await _writeLock.WaitAsync(cancellationToken);
            try
            {
                // the runtime writes each frame whole: a close frame is opcode 8
                if (buffer.Length > 0 && (buffer.Span[0] & 0x0F) == 0x8)
                {
                    _closeSent = true;
                }

                await inner.WriteAsync(buffer, cancellationToken);
            }
            finally
            {
                _writeLock.Release();
            }
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(buffer, cancellationToken);

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override void Flush() => inner.Flush();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            await base.DisposeAsync();
        }
    }
}
