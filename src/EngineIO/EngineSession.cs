using System.Buffers;
using System.Net;
using System.Net.WebSockets;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace EngineIO;

/// <summary>
/// One Engine.IO session: its transport (polling, then maybe WebSocket), its bounded send queue,
/// its heartbeat. Packets are received in order and handed to the <see cref="IEngineHandler"/>.
/// </summary>
public sealed class EngineSession
{
    private readonly EngineIOServer _server;
    private readonly EngineIOOptions _options;
    // the send queue (under _gate), bounded by MaxBufferedPackets and MaxBufferedBytes
    private SendQueue _queue;
    // the WebSocket once the session runs on one; then whoever queues a packet writes the queue
    // out itself (no writer task per session), one thread at a time (_draining)
    private WebSocketTransport? _ws;
    private int _draining;
    private int _flushScheduled;
    private Task _writeTail = Task.CompletedTask;
    private CancellationTokenSource? _closed; // created when someone asks for Closed (the runtime WebSocket's receives do)
    private readonly Lock _gate = new();
    // one timer for the heartbeat: due for the next ping, or, while a ping waits for its pong
    // (_awaitingPong), for the ping timeout; each tick also checks the write timeout. Once a
    // WebSocket session is closed, it is due when its connection must be cut at the latest
    private readonly ITimer _heartbeat;
    private int _awaitingPong;
    private TaskCompletionSource? _pollWaiter;
    private int _postInProgress;
    private int _state; // 0 open, 1 closed
    private bool _upgrading;
    private bool _upgraded;
    private EngineMessage _closeResponse = EngineMessage.ClosePacket;
    private long _heartbeatDeadline;
    private volatile bool _forcedClosing;
    private long _writeSince; // when the WebSocket write under way started (a timestamp), 0 when none is

    internal EngineSession(EngineIOServer server, EngineIOOptions options, EngineRequestInfo request, string transport)
    {
        _server = server;
        _options = options;
        Id = SessionId.New();
        Transport = transport;
        Request = request;

        var time = options.TimeProvider;
        _heartbeat = time.CreateDetachedTimer(static s => ((EngineSession)s!).OnHeartbeat(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>The session id (sid), 20 URL-safe characters.</summary>
    public string Id { get; }

    /// <summary>"polling" or "websocket": the transport in use now.</summary>
    public string Transport { get; private set; }

    /// <summary>What the handshake request carried.</summary>
    public EngineRequestInfo Request { get; }

    /// <summary>Free slot for the layer above (Socket.IO keeps its client here).</summary>
    public object? State { get; set; }

    /// <summary>Whether the session has not been closed yet.</summary>
    public bool IsOpen => Volatile.Read(ref _state) == 0;

    /// <summary>Cancelled when the session closes.</summary>
    public CancellationToken Closed
    {
        get
        {
            var closed = Volatile.Read(ref _closed);
            if (closed is null)
            {
                var created = new CancellationTokenSource();
                closed = Interlocked.CompareExchange(ref _closed, created, null) ?? created;
                if (!ReferenceEquals(closed, created))
                {
                    created.Dispose();
                }
            }

            // Abort sets the state, then cancels what it finds: one of the two sees the other
            if (!IsOpen)
            {
                closed.Cancel();
            }

            return closed.Token;
        }
    }

    /// <summary>Packets waiting for the transport.</summary>
    public int QueuedPackets => _queue.Count;

    /// <summary>Bytes of the packets waiting for the transport (bounded by <see cref="EngineIOOptions.MaxBufferedBytes"/>).</summary>
    public long QueuedBytes => _queue.Bytes;

    /// <summary>A write to the WebSocket has not completed yet (the client is not reading); for tests.</summary>
    internal bool WritePending => Interlocked.Read(ref _writeSince) != 0;

    /// <summary>
    /// Queues a message. Returns false when the session is closed, or when the queue is full:
    /// a volatile message is then dropped; any other closes the session ("transport error").
    /// </summary>
    public bool Send(EngineMessage message)
    {
        if (!TryEnqueue(message))
        {
            if (IsOpen && !message.IsVolatile)
            {
                _server.Log.LogWarning("Session {Sid}: send queue full ({Count} packets, {Bytes} bytes), closing slow consumer", Id, _queue.Count, _queue.Bytes);
                EngineIOMetrics.SendQueueFull(closed: true);
                Abort(EngineCloseReason.TransportError);
            }
            else if (IsOpen)
            {
                EngineIOMetrics.SendQueueFull(closed: false);
            }

            return false;
        }

        return true;
    }

    private bool TryEnqueue(EngineMessage message)
    {
        if (!IsOpen)
        {
            return false;
        }

        lock (_gate)
        {
            if (!_queue.TryEnqueue(message, _options.MaxBufferedPackets, _options.MaxBufferedBytes))
            {
                return false;
            }
        }

        WakeConsumers();
        return true;
    }

    private bool TryDequeue(out EngineMessage message)
    {
        lock (_gate)
        {
            return _queue.TryDequeue(out message);
        }
    }

    private void WakeConsumers()
    {
        Volatile.Read(ref _pollWaiter)?.TrySetResult();
        if (Volatile.Read(ref _ws) is not null && Interlocked.Exchange(ref _flushScheduled, 1) == 0)
        {
            _server.Flusher.Schedule(this);
        }
    }

    /// <summary>Called by the flusher: writes out what is queued.</summary>
    internal void Flush()
    {
        // a full fence, not a plain store: the drain's look at the queue must not move before it,
        // or a packet queued meanwhile could find the flag still set and nobody to write it
        Interlocked.Exchange(ref _flushScheduled, 0);
        if (Volatile.Read(ref _ws) is { } ws)
        {
            Drain(ws);
        }
    }

    /// <summary>Closes the session after the packets already queued are sent ("forced close").</summary>
    public void Close()
    {
        if (!IsOpen)
        {
            return;
        }

        if (!TryEnqueue(EngineMessage.ClosePacket))
        {
            Abort(EngineCloseReason.ForcedClose);
        }
    }

    /// <summary>Closes the session at once with the given reason; queued packets are discarded.</summary>
    public void Abort(string reason)
    {
        if (Interlocked.Exchange(ref _state, 1) != 0)
        {
            return;
        }

        if (Volatile.Read(ref _ws) is null)
        {
            _heartbeat.Dispose();
        }
        else
        {
            // the WebSocket run ends (and disposes the timer) once its last write is done; a write
            // the client holds up must not keep the connection: the timer cuts it at the write timeout
            var left = WriteTimeLeft();
            SetHeartbeatDeadline(left);
            try
            {
                _heartbeat.Change(left, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        if (reason is not (EngineCloseReason.TransportClose or EngineCloseReason.TransportError)
            && Volatile.Read(ref _ws) is { Socket.State: WebSocketState.Open } ws)
        {
            // the WebSocket gets a close frame, as from the reference server, rather than being
            // cut (a ping timeout, an invalid packet, a server-side abort); the write is
            // started before the read is cancelled, which would abort the socket
            _ = CloseSocketQuietlyAsync(ws.Socket, WebSocketCloseStatus.NormalClosure, null);
        }

        Volatile.Read(ref _pollWaiter)?.TrySetResult(); // a WebSocket ends with _closed
        Volatile.Read(ref _closed)?.Cancel();
        Volatile.Read(ref _ws)?.CancelReceive();
        _server.Remove(this);
        try
        {
            _server.Handler.OnClose(this, reason);
        }
#pragma warning disable CA1031 // a failing handler must not break the transport
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _server.Log.LogError(ex, "Session {Sid}: close handler failed", Id);
        }
    }

    internal static bool IsValidTextPacketType(byte b) => b is >= (byte)'0' and <= (byte)'6';

    /// <summary>
    /// The one check of received text, for both transports: a WebSocket text message and a
    /// polling body (whose binary packets are base64) must be UTF-8 (RFC 6455 8.1).
    /// </summary>
    internal static bool IsValidText(ReadOnlySpan<byte> text) => Utf8.IsValid(text);

    internal bool CanUpgrade
    {
        get
        {
            lock (_gate)
            {
                return IsOpen && Transport == EngineIOOptions.Polling && !_upgrading && !_upgraded;
            }
        }
    }

    internal void Start(EngineMessage openPacket)
    {
        TryEnqueue(openPacket);
        ExtendHeartbeatDeadline();
        _heartbeat.Change(_options.PingInterval, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// The session is due to be closed by the ping timeout even if the timer has not run yet (a
    /// loaded machine runs timers late): a GET checks the schedule, last pong (or open) + interval
    /// + timeout, not the timer. A pong arriving by POST is never refused for this.
    /// </summary>
    internal bool HeartbeatExpired()
    {
        var deadline = Interlocked.Read(ref _heartbeatDeadline);
        if (_options.TimeProvider.GetTimestamp() <= deadline)
        {
            return false;
        }

        Abort(EngineCloseReason.PingTimeout);
        return true;
    }

    private void ExtendHeartbeatDeadline() => SetHeartbeatDeadline(_options.PingInterval + _options.PingTimeout);

    private void SetHeartbeatDeadline(TimeSpan fromNow) =>
        Interlocked.Exchange(ref _heartbeatDeadline, _options.TimeProvider.GetTimestamp() + (long)(fromNow.TotalSeconds * _options.TimeProvider.TimestampFrequency));

    /// <summary>How long the write under way (or, with none, the next one) may still take.</summary>
    private TimeSpan WriteTimeLeft()
    {
        var since = Interlocked.Read(ref _writeSince);
        if (since == 0)
        {
            return _options.WriteTimeout;
        }

        var left = _options.WriteTimeout - _options.TimeProvider.GetElapsedTime(since);
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private void OnHeartbeat()
    {
        if (!IsOpen)
        {
            // a closed WebSocket session whose run has not ended by the write timeout (Abort set
            // the deadline; a tick that raced with Abort finds it ahead and leaves it to the next)
            if (Volatile.Read(ref _ws) is { } ws && _options.TimeProvider.GetTimestamp() >= Interlocked.Read(ref _heartbeatDeadline))
            {
                ws.Abort();
                _heartbeat.Dispose();
            }

            return;
        }

        var since = Interlocked.Read(ref _writeSince);
        if (since != 0 && _options.TimeProvider.GetElapsedTime(since) > _options.WriteTimeout)
        {
            _server.Log.LogWarning("Session {Sid}: a write has been pending for over {Timeout}, closing slow consumer", Id, _options.WriteTimeout);
            Abort(EngineCloseReason.TransportError);
            Volatile.Read(ref _ws)?.Abort();
            return;
        }

        if (Volatile.Read(ref _awaitingPong) != 0)
        {
            Abort(EngineCloseReason.PingTimeout);
            return;
        }

        Volatile.Write(ref _awaitingPong, 1);
        _heartbeat.Change(_options.PingTimeout, Timeout.InfiniteTimeSpan);
        lock (_gate)
        {
            _queue.ReleaseIdleRing();
        }

        Send(EngineMessage.Ping);
    }

    /// <summary>Handles one received packet; false when it was invalid (the session is closed).</summary>
    private void OnPacket(EngineMessage packet)
    {
        if (!IsOpen)
        {
            return;
        }

        switch (packet.Type)
        {
            case EnginePacketType.Message:
                try
                {
                    _server.Handler.OnMessage(this, packet);
                }
#pragma warning disable CA1031 // the handler's failure closes this session only
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    _server.Log.LogError(ex, "Session {Sid}: message handler failed", Id);
                    Abort(EngineCloseReason.TransportError);
                }

                break;
            case EnginePacketType.Pong:
                ExtendHeartbeatDeadline();
                Volatile.Write(ref _awaitingPong, 0);
                _heartbeat.Change(_options.PingInterval, Timeout.InfiniteTimeSpan);
                break;
            case EnginePacketType.Close:
                _closeResponse = EngineMessage.Noop;
                Abort(EngineCloseReason.TransportClose);
                break;
            case EnginePacketType.Noop:
                break;
            default:
                // ping (wrong heartbeat direction in v4), open, upgrade: not valid here
                Abort(EngineCloseReason.ParseError);
                break;
        }
    }

    // ---- HTTP long-polling ----

    internal async Task HandlePollAsync(HttpContext context)
    {
        var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _pollWaiter, waiter, null) is not null)
        {
            // a second GET while one is pending: the spec closes the session
            Abort(EngineCloseReason.TransportError);
            await EngineIOServer.WriteErrorAsync(context, EngineError.BadRequest);
            return;
        }

        try
        {
            if (!_queue.IsEmpty || !IsOpen || _upgrading)
            {
                waiter.TrySetResult();
            }

            using (context.RequestAborted.Register(static s => ((EngineSession)s!).OnPollAborted(), this))
            {
                await waiter.Task;
            }

            if (context.RequestAborted.IsCancellationRequested)
            {
                return;
            }

            var packets = new List<EngineMessage>();
            var closeAfter = false;
            if (!IsOpen)
            {
                packets.Add(_closeResponse);
            }
            else if (_upgrading || _upgraded)
            {
                packets.Add(EngineMessage.Noop);
            }
            else
            {
                var size = 0;
                while (size < _options.MaxPayload && TryDequeue(out var packet))
                {
                    packets.Add(packet);
                    size += packet.Frame.Length;
                    if (ReferenceEquals(packet, EngineMessage.ClosePacket))
                    {
                        closeAfter = true;
                        break;
                    }
                }

                if (packets.Count == 0)
                {
                    packets.Add(EngineMessage.Noop);
                }
            }

            var writer = new ArrayBufferWriter<byte>(256);
            PollingPayload.Encode(packets, writer);
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "text/plain; charset=UTF-8";
            context.Response.ContentLength = writer.WrittenCount;
            EngineIOServer.CountSent(writer.WrittenCount);
            await context.Response.Body.WriteAsync(writer.WrittenMemory, context.RequestAborted);
            if (closeAfter)
            {
                Abort(EngineCloseReason.ForcedClose);
            }
        }
        finally
        {
            Interlocked.CompareExchange(ref _pollWaiter, null, waiter);
        }
    }

    private void OnPollAborted()
    {
        // the client went away while its GET was pending: the session is lost
        Abort(EngineCloseReason.TransportClose);
    }

    internal async Task HandlePostAsync(HttpContext context)
    {
        if (Interlocked.Exchange(ref _postInProgress, 1) != 0)
        {
            Abort(EngineCloseReason.TransportError);
            await EngineIOServer.WriteErrorAsync(context, EngineError.BadRequest);
            return;
        }

        try
        {
            var declared = context.Request.ContentLength;
            if (declared > _options.MaxPayload)
            {
                await EngineIOServer.WriteErrorAsync(context, EngineError.PayloadTooLarge(_options.MaxPayload));
                return;
            }

            var body = await ReadBodyAsync(context.Request.Body, _options.MaxPayload, context.RequestAborted);
            if (body is null)
            {
                await EngineIOServer.WriteErrorAsync(context, EngineError.PayloadTooLarge(_options.MaxPayload));
                return;
            }

            if (!IsValidText(body.Value.Span))
            {
                // what a WebSocket text message that is not UTF-8 gets (1007), as an HTTP answer:
                // nothing invalid reaches the handler, whichever the transport
                Abort(EngineCloseReason.ParseError);
                await EngineIOServer.WriteErrorAsync(context, EngineError.PayloadNotUtf8);
                return;
            }

            var packets = new List<EngineMessage>();
            if (!PollingPayload.TryDecode(body.Value, packets))
            {
                Abort(EngineCloseReason.ParseError);
                await EngineIOServer.WriteErrorAsync(context, EngineError.BadRequest);
                return;
            }

            foreach (var packet in packets)
            {
                OnPacket(packet);
            }

            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.ContentType = "text/html";
            context.Response.ContentLength = 2;
            await context.Response.Body.WriteAsync("ok"u8.ToArray(), context.RequestAborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or BadHttpRequestException)
        {
            Abort(EngineCloseReason.TransportError);
        }
        finally
        {
            Volatile.Write(ref _postInProgress, 0);
        }
    }

    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(Stream body, int max, CancellationToken ct)
    {
        var buffer = new byte[Math.Min(max + 1, 4096)];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length > max)
                {
                    return null;
                }

                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, max + 1));
            }

            var read = await body.ReadAsync(buffer.AsMemory(length), ct);
            if (read == 0)
            {
                return buffer.AsMemory(0, length);
            }

            length += read;
            if (length > max)
            {
                return null;
            }
        }
    }

    // ---- WebSocket ----

    /// <summary>Runs the session over <paramref name="transport"/> until it ends and its last write is done.</summary>
    internal Task RunWebSocketAsync(WebSocketTransport transport)
    {
        Volatile.Write(ref _ws, transport);
        if (transport.Socket is PipeWebSocket pipe)
        {
            pipe.MaxMessageLength = _options.MaxPayload; // a frame that says it is longer gets 1009 at its header
        }

        Drain(transport); // what was queued before (the open packet, or packets queued while polling)
        return ReadLoopAsync(transport.Socket); // one state machine per connection, not two
    }

    internal async Task RunUpgradeAsync(WebSocketTransport transport)
    {
        var socket = transport.Socket;
        using var timeout = new CancellationTokenSource(_options.UpgradeTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, Closed);
        var buffer = new byte[64];
        try
        {
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer, linked.Token);
                if (result.MessageType != WebSocketMessageType.Text || !result.EndOfMessage)
                {
                    break;
                }

                var text = buffer.AsSpan(0, result.Count);
                if (text.SequenceEqual("2probe"u8))
                {
                    await socket.SendAsync(EngineMessage.PongProbe.Frame, WebSocketMessageType.Text, true, linked.Token);
                    lock (_gate)
                    {
                        _upgrading = true;
                    }

                    Volatile.Read(ref _pollWaiter)?.TrySetResult();
                    continue;
                }

                if (text.SequenceEqual("5"u8) && _upgrading)
                {
                    lock (_gate)
                    {
                        _upgrading = false;
                        _upgraded = true;
                        Transport = EngineIOOptions.WebSocket;
                    }

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

    private async Task ReadLoopAsync(WebSocket socket)
    {
        var reason = EngineCloseReason.TransportClose;
        try
        {
            while (IsOpen)
            {
                // wait for the next message without holding a buffer: idle sessions cost no memory here
                if (socket is PipeWebSocket pipe)
                {
                    pipe.EndWait(await pipe.WaitReadableAsync());
                }

                var peek = await socket.ReceiveAsync(Memory<byte>.Empty, ReceiveToken(socket));
                if (peek.MessageType == WebSocketMessageType.Close)
                {
                    reason = _forcedClosing ? EngineCloseReason.ForcedClose : EngineCloseReason.TransportClose;
                    break;
                }

                var (status, message) = peek.EndOfMessage
                    ? (ReadStatus.Complete, peek.MessageType == WebSocketMessageType.Binary ? EngineMessage.Binary(Array.Empty<byte>()) : null)
                    : await ReadMessageAsync(socket, peek.MessageType);
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

    /// <summary>The pipe WebSocket's receives are ended by CancelReceive (see Abort); the runtime's by this token.</summary>
    private CancellationToken ReceiveToken(WebSocket socket) => socket is PipeWebSocket ? CancellationToken.None : Closed;

    private enum ReadStatus
    {
        Complete,
        Closed,
        TooBig,
        NotUtf8,
    }

    /// <summary>Reads one whole message into a pooled buffer and copies it out; null message when malformed.</summary>
    private async Task<(ReadStatus, EngineMessage?)> ReadMessageAsync(WebSocket socket, WebSocketMessageType type)
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

                var result = await socket.ReceiveAsync(buffer.AsMemory(length), ReceiveToken(socket));
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
                Abort(EngineCloseReason.TransportError);
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
                Abort(EngineCloseReason.TransportError);
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
            Abort(EngineCloseReason.TransportError);
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

        Abort(EngineCloseReason.ForcedClose);
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

/// <summary>What the handshake request of a session carried, kept after the request ends.</summary>
public sealed class EngineRequestInfo
{
    private readonly string[] _pairs; // the headers' names and values, then the query's
    private readonly int _queryStart;

    /// <summary>The request's headers (names distinct, case-insensitively) and query (names distinct).</summary>
    internal EngineRequestInfo(IReadOnlyCollection<KeyValuePair<string, string>> headers, IReadOnlyCollection<KeyValuePair<string, string>> query, IPAddress? remoteAddress, string url, bool secure)
    {
        (_pairs, _queryStart) = CompactStringMap.Flatten(headers, query);
        RemoteAddress = remoteAddress;
        Url = url;
        Secure = secure;
    }

    /// <summary>The handshake's headers, names case-insensitive (repeated fields joined with ",").</summary>
    public IReadOnlyDictionary<string, string> Headers => new CompactStringMap(_pairs, 0, _queryStart, StringComparison.OrdinalIgnoreCase);

    /// <summary>The handshake's query parameters.</summary>
    public IReadOnlyDictionary<string, string> Query => new CompactStringMap(_pairs, _queryStart, _pairs.Length, StringComparison.Ordinal);

    /// <summary>The client's address, when the transport knows it.</summary>
    public IPAddress? RemoteAddress { get; }

    /// <summary>The handshake request's path and query.</summary>
    public string Url { get; }

    /// <summary>Whether the handshake came over HTTPS.</summary>
    public bool Secure { get; }

    internal static EngineRequestInfo From(HttpContext context)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in context.Request.Headers)
        {
            headers[header.Key] = header.Value.ToString();
        }

        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in context.Request.Query)
        {
            query[item.Key] = item.Value.ToString();
        }

        var url = context.Request.PathBase + context.Request.Path + context.Request.QueryString;
        return new EngineRequestInfo(headers, query, context.Connection.RemoteIpAddress, url, context.Request.IsHttps);
    }
}
