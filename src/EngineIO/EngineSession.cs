using System.Net.WebSockets;
using System.Text.Unicode;

namespace EngineIO;

/// <summary>
/// One Engine.IO session: its transport (polling, then maybe WebSocket), its bounded send queue,
/// its heartbeat. Packets are received in order and handed to the <see cref="IEngineHandler"/>.
/// </summary>
public sealed partial class EngineSession
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
                EngineLog.SendQueueFull(_server.Log, Id, _queue.Count, _queue.Bytes);
                EngineIOMetrics.SendQueueFull(closed: true);
                Abort(EngineCloseReasonKind.TransportError);
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
            Abort(EngineCloseReasonKind.ForcedClose);
        }
    }

    /// <summary>Closes the session at once with the given reason; queued packets are discarded.</summary>
    public void Abort(EngineCloseReasonKind reason) => Abort(reason.ToWireString());

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
        EngineLog.SessionClosed(_server.Log, Id, reason);
        try
        {
            _server.Handler.OnClose(this, reason);
        }
#pragma warning disable CA1031 // a failing handler must not break the transport
        catch (Exception ex)
#pragma warning restore CA1031
        {
            EngineLog.CloseHandlerFailed(_server.Log, ex, Id);
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

        Abort(EngineCloseReasonKind.PingTimeout);
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
            EngineLog.WriteTimedOut(_server.Log, Id, _options.WriteTimeout);
            Abort(EngineCloseReasonKind.TransportError);
            Volatile.Read(ref _ws)?.Abort();
            return;
        }

        if (Volatile.Read(ref _awaitingPong) != 0)
        {
            Abort(EngineCloseReasonKind.PingTimeout);
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
                    EngineLog.MessageHandlerFailed(_server.Log, ex, Id);
                    Abort(EngineCloseReasonKind.TransportError);
                }

                break;
            case EnginePacketType.Pong:
                ExtendHeartbeatDeadline();
                Volatile.Write(ref _awaitingPong, 0);
                _heartbeat.Change(_options.PingInterval, Timeout.InfiniteTimeSpan);
                break;
            case EnginePacketType.Close:
                _closeResponse = EngineMessage.Noop;
                Abort(EngineCloseReasonKind.TransportClose);
                break;
            case EnginePacketType.Noop:
                break;
            default:
                // ping (wrong heartbeat direction in v4), open, upgrade: not valid here
                Abort(EngineCloseReasonKind.ParseError);
                break;
        }
    }
}
