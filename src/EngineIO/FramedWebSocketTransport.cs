using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;

namespace EngineIO;

/// <summary>
/// <see cref="EngineWebSocketMode.Framed"/>: a server WebSocket whose outgoing data frames we frame
/// ourselves, so that all the packets a session has queued go out in ONE write and one flush (one
/// send system call), where
/// <see cref="WebSocket.SendAsync(ReadOnlyMemory{byte}, WebSocketMessageType, bool, CancellationToken)"/>
/// writes and flushes each frame on its own. Receiving, control frames (ping/pong/close) and the
/// closing handshake stay with the runtime's <see cref="WebSocket"/>, created over a stream that
/// serialises its writes with ours, so frames never interleave.
/// </summary>
internal sealed class FramedWebSocketTransport : WebSocketTransport
{
    private readonly SerializedStream _stream;
    private readonly HttpContext? _context;

    /// <summary>A server WebSocket over an upgraded connection the caller has answered with 101.</summary>
    public FramedWebSocketTransport(Stream upgraded, HttpContext? context = null)
    {
        _stream = new SerializedStream(upgraded);
        Socket = WebSocket.CreateFromStream(_stream, new WebSocketCreationOptions
        {
            IsServer = true,
            KeepAliveInterval = TimeSpan.Zero,
        });
        _context = context;
    }

    public override WebSocket Socket { get; }

    public override ValueTask SendFramesAsync(ReadOnlyMemory<byte> frames) => _stream.WriteDataAsync(frames);

    public override void Abort()
    {
        Socket.Abort();
        _context?.Abort();
    }

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
