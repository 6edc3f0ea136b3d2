using System.IO.Pipelines;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Connections;

namespace EngineIO;

/// <summary>
/// <see cref="EngineWebSocketMode.ConnectionPipe"/>: the <see cref="PipeWebSocket"/> directly over
/// the pipes of a connection the <see cref="WebSocketFastPath"/> has answered with 101.
/// </summary>
internal sealed class PipeWebSocketTransport(ConnectionContext connection) : WebSocketTransport
{
    private readonly PipeWebSocket _socket = new(connection.Transport);

    public override WebSocket Socket => _socket;

    public override ValueTask SendFramesAsync(ReadOnlyMemory<byte> frames) => _socket.SendFramesAsync(frames);

    public override void Abort()
    {
        _socket.Abort();
        connection.Abort(new ConnectionAbortedException("The WebSocket session was aborted."));
    }

    /// <summary>The pipe WebSocket's receives do not watch their token (a callback node per connection): they end here.</summary>
    public override void CancelReceive() => _socket.CancelReceive();

    public override CancellationToken ReceiveToken(CancellationToken closed) => CancellationToken.None;

    public override void LimitMessageLength(int maxPayload) => _socket.MaxMessageLength = maxPayload;

    public override ValueTask<ReadResult> WaitReadableAsync() => _socket.WaitReadableAsync();

    public override void EndWait(in ReadResult result) => _socket.EndWait(result);
}
