using System.Buffers.Binary;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;

namespace EngineIO;

/// <summary>
/// <see cref="EngineWebSocketMode.Runtime"/> (and HTTP/2 WebSockets in any mode): the runtime's
/// <see cref="WebSocket"/> as ASP.NET Core accepts it, one <c>SendAsync</c> per frame.
/// </summary>
internal sealed class RuntimeWebSocketTransport(WebSocket socket, HttpContext context) : WebSocketTransport
{
    public override WebSocket Socket { get; } = socket;

    public override void Abort()
    {
        Socket.Abort();
        context.Abort();
    }

    // the runtime WebSocket only sends a frame at a time: unpack the batch
    public override async ValueTask SendFramesAsync(ReadOnlyMemory<byte> frames)
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
}
