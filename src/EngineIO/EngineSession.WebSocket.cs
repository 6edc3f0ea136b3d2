using System.Buffers;
using System.Net.WebSockets;

namespace EngineIO;

/// <content>The WebSocket transport of a session: the upgrade probe, the read loop, and the batched writes of its queue.</content>
public sealed partial class EngineSession
{
    /// <summary>Runs the session over <paramref name="transport"/> until it ends and its last write is done.</summary>
    internal Task RunWebSocketAsync(WebSocketTransport transport)
    {
        Volatile.Write(ref _ws, transport);
        transport.LimitMessageLength(_options.MaxPayload); // a frame that says it is longer gets 1009 at its header

        Drain(transport); // what was queued before (the open packet, or packets queued while polling)
        return ReadLoopAsync(transport); // one state machine per connection, not two
    }

    internal async Task RunUpgradeAsync(WebSocketTransport transport)
    {
        var socket = transport.Socket;
        using var timeout = new CancellationTokenSource(_options.UpgradeTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, Closed);
        var buffer = new byte[64];
        // until the probe is answered, the session's end ends the probe (the client, still
        // polling, learns of the end there); from the answer on, only the upgrade timeout does
        var token = linked.Token;
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, token);
                if (result.MessageType != WebSocketMessageType.Text || !result.EndOfMessage)
                {
                    break;
                }

                var text = buffer.AsSpan(0, result.Count);
                if (text.SequenceEqual("2probe"u8))
                {
                    if (!IsOpen)
                    {
                        break;
                    }

                    // Once the client has the answer it pauses polling: it waits for its pending
                    // requests, sends no more GETs, and then sends "5" here. Should the session end
                    // meanwhile, this socket is the only way left to tell it, and a probe that fails
                    // in its pause is ignored (the reference client then waits, paused, for its ping
                    // timeout): the probe stays until "5" and is then closed
                    token = timeout.Token;
                    await socket.SendAsync(EngineMessage.PongProbe.Frame, WebSocketMessageType.Text, true, token);
                    lock (_gate)
                    {
                        _upgrading = true;
                    }

                    Volatile.Read(ref _pollWaiter)?.TrySetResult();
                    continue;
                }

                if (text.SequenceEqual("5"u8) && _upgrading && !IsOpen)
                {
                    // the session ended during the upgrade: the client now reads this socket only
                    EngineLog.UpgradeOfClosedSession(_server.Log, Id);
                    await CloseSocketQuietlyAsync(socket, WebSocketCloseStatus.NormalClosure, null);
                    await DrainCloseAsync(socket, token);
                    return;
                }

                if (text.SequenceEqual("5"u8) && _upgrading)
                {
                    lock (_gate)
                    {
                        _upgrading = false;
                        _upgraded = true;
                        Transport = EngineIOOptions.WebSocket;
                    }

                    EngineLog.SessionUpgraded(_server.Log, Id);

                    Volatile.Read(ref _pollWaiter)?.TrySetResult();
                    await RunWebSocketAsync(transport);
                    return;
                }

                break;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException)
        {
        }

        // the probe failed: the session goes on over polling
        lock (_gate)
        {
            _upgrading = false;
        }

        socket.Abort();
    }

    /// <summary>Reads and drops what the client still sends until its close frame, the end of the connection, or <paramref name="token"/>.</summary>
    private static async Task DrainCloseAsync(WebSocket socket, CancellationToken token)
    {
        var buffer = new byte[64];
        try
        {
            while ((await socket.ReceiveAsync(buffer, token)).MessageType != WebSocketMessageType.Close)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException)
        {
        }
    }

    private async Task ReadLoopAsync(WebSocketTransport transport)
    {
        var socket = transport.Socket;
        var reason = EngineCloseReason.TransportClose;
        try
        {
            while (IsOpen)
            {
                // wait for the next message without holding a buffer: idle sessions cost no memory here
                transport.EndWait(await transport.WaitReadableAsync());

                var peek = await socket.ReceiveAsync(Memory<byte>.Empty, transport.ReceiveToken(Closed));
                if (peek.MessageType == WebSocketMessageType.Close)
                {
                    reason = _forcedClosing ? EngineCloseReason.ForcedClose : EngineCloseReason.TransportClose;
                    break;
                }

                var (status, message) = peek.EndOfMessage
                    ? (ReadStatus.Complete, peek.MessageType == WebSocketMessageType.Binary ? EngineMessage.Binary(Array.Empty<byte>()) : null)
                    : await ReadMessageAsync(transport, peek.MessageType);
                if (status == ReadStatus.Closed)
                {
                    reason = _forcedClosing ? EngineCloseReason.ForcedClose : EngineCloseReason.TransportClose;
                    break;
                }

                if (status == ReadStatus.NotUtf8)
                {
                    // what the runtime WebSocket does for text that is not UTF-8 (RFC 6455 8.1)
                    reason = EngineCloseReason.TransportError;
                    await CloseSocketQuietlyAsync(socket, WebSocketCloseStatus.InvalidPayloadData, null);
                    break;
                }

                if (status == ReadStatus.TooBig)
                {
                    reason = EngineCloseReason.TransportError;
                    await CloseSocketQuietlyAsync(socket, WebSocketCloseStatus.MessageTooBig, "Max payload size exceeded");
                    break;
                }

                if (message is null)
                {
                    reason = EngineCloseReason.ParseError;
                    break;
                }

                OnPacket(message);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (ex is WebSocketException or IOException)
        {
            // the connection failed (a reset comes from the pipe WebSocket's idle wait as the
            // transport's IOException)
            reason = EngineCloseReason.TransportError;
        }

        Abort(reason);

        // a client's close frame is answered with ours (RFC 6455 5.5.1), echoing its status; a
        // close frame we sent (e.g. 1009 for a message over MaxPayload) must reach the client:
        // aborting would reset the connection before Kestrel flushes it, so only an open socket is cut
        if (socket.State == WebSocketState.CloseReceived)
        {
            await CloseSocketQuietlyAsync(socket, socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure, null);
        }
        else if (socket.State == WebSocketState.Open)
        {
            Volatile.Read(ref _ws)?.Abort(); // the connection too: a write the client holds up ends
        }

        await Volatile.Read(ref _writeTail);
        _heartbeat.Dispose();
    }

    private enum ReadStatus
    {
        Complete,
        Closed,
        TooBig,
        NotUtf8,
    }

    /// <summary>Reads one whole message into a pooled buffer and copies it out; null message when malformed.</summary>
    private async Task<(ReadStatus, EngineMessage?)> ReadMessageAsync(WebSocketTransport transport, WebSocketMessageType type)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _options.MaxPayload + 1));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                var result = await transport.Socket.ReceiveAsync(buffer.AsMemory(length), transport.ReceiveToken(Closed));
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return (ReadStatus.Closed, null);
                }

                length += result.Count;
                if (length > _options.MaxPayload)
                {
                    return (ReadStatus.TooBig, null);
                }

                if (result.EndOfMessage)
                {
                    break;
                }
            }

            var data = buffer.AsSpan(0, length).ToArray();
            if (type == WebSocketMessageType.Binary)
            {
                return (ReadStatus.Complete, EngineMessage.Binary(data));
            }

            if (!IsValidText(data))
            {
                return (ReadStatus.NotUtf8, null);
            }

            return (ReadStatus.Complete, data.Length > 0 && IsValidTextPacketType(data[0]) ? EngineMessage.FromTextFrame(data) : null);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Writes the queue out on the calling thread (the flusher's round), batch by batch, each
    /// batch one write and one flush. Only one thread drains at a time: one that finds the flag
    /// taken leaves the packets to the drainer, which looks again before it lets go. A write that
    /// cannot complete at once (the client reads slowly) is finished asynchronously, and the
    /// drain goes on from there; the flusher never waits for one connection.
    /// </summary>
    private void Drain(WebSocketTransport ws)
    {
        while (IsOpen && !_queue.IsEmpty && Interlocked.CompareExchange(ref _draining, 1, 0) == 0)
        {
            ValueTask pending;
            byte[]? buffer;
            try
            {
                (pending, buffer) = WriteBatch(ws);
            }
            catch (Exception ex) when (IsTransportFailure(ex))
            {
                Abort(EngineCloseReasonKind.TransportError);
                return;
            }

            if (buffer is null)
            {
                // the close packet is next: the drain ends with the closing handshake
                Volatile.Write(ref _writeTail, CloseAfterFlushAsync(ws));
                return;
            }

            if (!pending.IsCompleted)
            {
                Volatile.Write(ref _writeTail, DrainAsync(ws, pending, buffer));
                return;
            }

            try
            {
                pending.GetAwaiter().GetResult();
            }
            catch (Exception ex) when (IsTransportFailure(ex))
            {
                Abort(EngineCloseReasonKind.TransportError);
                return;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            Volatile.Write(ref _draining, 0);
        }
    }

    /// <summary>Finishes a write that went asynchronous, then drains the rest the same way.</summary>
    private async Task DrainAsync(WebSocketTransport ws, ValueTask pending, byte[] buffer)
    {
        try
        {
            while (true)
            {
                try
                {
                    if (!pending.IsCompleted)
                    {
                        Interlocked.Exchange(ref _writeSince, Math.Max(1, _options.TimeProvider.GetTimestamp()));
                    }

                    await pending;
                }
                finally
                {
                    Interlocked.Exchange(ref _writeSince, 0);
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                if (!IsOpen || _queue.IsEmpty)
                {
                    break;
                }

                (pending, var next) = WriteBatch(ws);
                if (next is null)
                {
                    await CloseAfterFlushAsync(ws);
                    return;
                }

                buffer = next;
            }
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            Abort(EngineCloseReasonKind.TransportError);
            return;
        }

        Volatile.Write(ref _draining, 0);
        Drain(ws); // anything queued while the flag was held
    }

    /// <summary>
    /// Lays out the queued packets that fit in one batch (at least one) as WebSocket frames in a
    /// pooled buffer and starts writing them. Returns a null buffer, having taken it off the
    /// queue, when the next packet is the close packet. The caller returns the buffer to the pool
    /// once the write has completed.
    /// </summary>
    private (ValueTask Pending, byte[]? Buffer) WriteBatch(WebSocketTransport ws)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        var length = 0;
        lock (_gate)
        {
            while (_queue.TryPeek(out var packet))
            {
                if (ReferenceEquals(packet, EngineMessage.ClosePacket))
                {
                    // what was queued before the close goes first
                    if (length == 0)
                    {
                        _queue.TryDequeue(out _);
                        ArrayPool<byte>.Shared.Return(buffer);
                        return (default, null);
                    }

                    break;
                }

                var need = WebSocketTransport.FrameLength(packet.Frame.Length);
                if (length + need > buffer.Length)
                {
                    if (length > 0 && length + need > WebSocketTransport.MaxBatchBytes)
                    {
                        break;
                    }

                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(length + need, Math.Min(buffer.Length * 2, WebSocketTransport.MaxBatchBytes)));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }

                _queue.TryDequeue(out _);
                length += WebSocketTransport.WriteFrame(buffer.AsSpan(length), packet.Frame.Span, packet.IsBinary);
            }
        }

        try
        {
            EngineIOServer.CountSent(length);
            return (ws.SendFramesAsync(buffer.AsMemory(0, length)), buffer);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>A forced close: the close frame after everything queued before it, then the end.</summary>
    private async Task CloseAfterFlushAsync(WebSocketTransport ws)
    {
        // complete the closing handshake, so the frames sent before reach the client
        _forcedClosing = true;
        await CloseSocketQuietlyAsync(ws.Socket, WebSocketCloseStatus.NormalClosure, null);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), _options.TimeProvider, Closed);
        }
        catch (OperationCanceledException)
        {
            // the read loop saw the client's close frame
        }

        Abort(EngineCloseReasonKind.ForcedClose);
    }

    private static bool IsTransportFailure(Exception ex) =>
        ex is WebSocketException or ObjectDisposedException or OperationCanceledException or IOException or InvalidOperationException;

    private static async Task CloseSocketQuietlyAsync(WebSocket socket, WebSocketCloseStatus status, string? description)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            await socket.CloseOutputAsync(status, description, cts.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or WebSocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
        }
    }
}
