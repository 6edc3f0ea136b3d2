using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Timeouts;

namespace EngineIO;

/// <summary>
/// A session's WebSocket, whichever <see cref="EngineWebSocketMode"/> made it: the session
/// receives through <see cref="Socket"/> and sends batches of frames laid out by
/// <see cref="WriteFrame(Span{byte}, ReadOnlySpan{byte}, bool)"/> through <see cref="SendFramesAsync"/>;
/// what differs between the modes stays behind these members.
/// </summary>
internal abstract class WebSocketTransport : IDisposable
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>How many bytes of queued frames one write carries at most.</summary>
    internal const int MaxBatchBytes = 32 * 1024;

    /// <summary>The WebSocket: receive, close, abort.</summary>
    public abstract WebSocket Socket { get; }

    /// <summary>
    /// Completes the handshake of a WebSocket request on the HTTP path. <see cref="EngineWebSocketMode.Runtime"/>,
    /// and any request that is not an HTTP/1.1 upgrade (HTTP/2 extended CONNECT), get the runtime
    /// WebSocket as is; otherwise our batched framing over the upgraded stream.
    /// </summary>
    public static async Task<WebSocketTransport> AcceptAsync(HttpContext context, EngineWebSocketMode mode)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        if (mode == EngineWebSocketMode.Runtime || upgrade is null || !upgrade.IsUpgradableRequest || key.Length == 0)
        {
            return new RuntimeWebSocketTransport(await context.WebSockets.AcceptWebSocketAsync(), context);
        }

        var headers = context.Response.Headers;
        headers.Connection = "Upgrade";
        headers.Upgrade = "websocket";
        headers.SecWebSocketAccept = AcceptKey(key);
        context.Features.Get<IHttpRequestTimeoutFeature>()?.DisableTimeout();
        // Engine.IO has its own heartbeat: no keep-alive timer per connection
        return new FramedWebSocketTransport(await upgrade.UpgradeAsync(), context);
    }

    /// <summary>
    /// Sends whole frames already laid out by <c>WriteFrame</c>. Throws
    /// <see cref="WebSocketException"/> once a close frame has gone out (no data may follow it).
    /// </summary>
    public abstract ValueTask SendFramesAsync(ReadOnlyMemory<byte> frames);

    /// <summary>
    /// Cuts the connection: the socket is aborted and so is the connection under it, which ends a
    /// write the client holds up by not reading (aborting the socket alone leaves that write, and
    /// the connection with the bytes it holds, to the client's goodwill).
    /// </summary>
    public abstract void Abort();

    /// <summary>
    /// Ends a pending receive with <see cref="OperationCanceledException"/> where the token given to
    /// the receive does not (see <see cref="ReceiveToken"/>).
    /// </summary>
    public virtual void CancelReceive()
    {
    }

    /// <summary>The token to give each receive: the session's <paramref name="closed"/> token, or none when <see cref="CancelReceive"/> ends receives.</summary>
    public virtual CancellationToken ReceiveToken(CancellationToken closed) => closed;

    /// <summary>
    /// A message whose frame header announces more than this many bytes is refused at its header
    /// (1009) where the WebSocket can tell; otherwise the session counts the bytes as they come.
    /// </summary>
    public virtual void LimitMessageLength(int maxPayload)
    {
    }

    /// <summary>
    /// Waits until bytes arrive, holding no buffer, where the WebSocket can (an idle session then
    /// holds no receive state); completes at once otherwise. Pass the result to <see cref="EndWait"/>.
    /// </summary>
    public virtual ValueTask<ReadResult> WaitReadableAsync() => default;

    /// <summary>Ends a wait of <see cref="WaitReadableAsync"/>; throws if it was cancelled.</summary>
    public virtual void EndWait(in ReadResult result)
    {
    }

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

    public virtual void Dispose() => Socket.Dispose();
}
