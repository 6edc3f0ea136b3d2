using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Numerics;
using System.Text;
using System.Text.Unicode;

namespace EngineIO;

/// <summary>
/// The server side of RFC 6455 directly over a connection's pipes, for the connections the
/// <see cref="WebSocketFastPath"/> upgrades. It replaces the runtime's WebSocket over a stream over
/// the pipes (with its two async mutexes, receive state machine and stream adapters), which cost
/// about a kilobyte per idle connection; an idle session here holds one object and no buffer.
/// <para>
/// What the session needs and nothing more: it receives (a zero-length buffer waits for the next
/// frame header; control frames are handled inside: a ping is answered with a pong, a close frame
/// ends the receive side), sends batches of data frames already laid out by the session
/// (<see cref="SendFramesAsync"/>), and closes. Protocol violations get the close frame RFC 6455
/// prescribes (1002, or 1007 for a close reason that is not UTF-8) and a <see cref="WebSocketException"/>.
/// Text messages are not validated as UTF-8 here: the session checks each whole message.
/// A pending receive ends through <see cref="CancelReceive"/> or <see cref="Abort"/>, not through
/// its token (which is only checked when the receive starts): registering on the session's token
/// for every receive would keep a callback node per connection.
/// </para>
/// Writes never interleave: one writer at a time holds the output; a control frame that comes
/// while data is being written waits for that write and goes out right after it. What waits is
/// bounded whatever the client sends: one pong, the latest (RFC 6455 5.5.3 lets an endpoint
/// answer only the most recent ping; a client that floods pings and does not read would otherwise
/// queue a pong per ping), then one close frame (after which no pong is sent).
/// </summary>
internal sealed class PipeWebSocket : WebSocket
{
    private const int MaxControlPayload = 125;

    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private WebSocketState _state = WebSocketState.Open;
    private WebSocketCloseStatus? _closeStatus;
    private string? _closeDescription;

    // the frame being received
    private long _remaining;      // payload bytes of the current data frame not yet received
    private int _mask;            // its masking key, rotated to the next byte's position
    private bool _inFrame;        // a data frame's header has been read and its payload is under way
    private bool _final;          // the current data frame ends its message
    private bool _inMessage;      // a fragmented message is under way (continuations are expected)
    private WebSocketMessageType _messageType;

    /// <summary>
    /// A data frame whose header announces more bytes than this is refused at once with 1009
    /// (as the reference server's <c>ws</c> does with <c>maxPayload</c>), before any of it is read.
    /// </summary>
    internal int MaxMessageLength { get; set; } = int.MaxValue;

    // writes: under lock (this)
    private bool _writing;
    private bool _closeSent;
    private byte[]? _pendingPong;  // the pong to write after the write under way (the latest ping's)
    private byte[]? _pendingClose; // the close frame to write after it (and after the pong)
    private TaskCompletionSource? _writerFree;

    public PipeWebSocket(IDuplexPipe pipe)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        _input = pipe.Input;
        _output = pipe.Output;
    }

    /// <summary>Control frames waiting behind the write under way; for tests.</summary>
    internal int PendingControlFrames
    {
        get
        {
            lock (this)
            {
                return (_pendingPong is null ? 0 : 1) + (_pendingClose is null ? 0 : 1);
            }
        }
    }

    public override WebSocketCloseStatus? CloseStatus => _closeStatus;

    public override string? CloseStatusDescription => _closeDescription;

    public override WebSocketState State => _state;

    public override string? SubProtocol => null;

    /// <summary>
    /// Waits until bytes arrive, without a state machine of this socket's own: an idle session
    /// waits here, on the pipe's own awaitable, so that it holds only its caller's state machine
    /// (the receive's, with its nested reads, would hold three, about 600 B). Pass the result to
    /// <see cref="EndWait"/>, then receive.
    /// </summary>
    public ValueTask<ReadResult> WaitReadableAsync() => _input.ReadAsync();

    /// <summary>
    /// Leaves the bytes <see cref="WaitReadableAsync"/> saw for the next receive; throws if the wait
    /// was cancelled. The wait itself throws the transport's <see cref="IOException"/> when the
    /// connection fails (a reset), where a receive throws <see cref="WebSocketException"/>.
    /// </summary>
    public void EndWait(in ReadResult result)
    {
        _input.AdvanceTo(result.Buffer.Start);
        ThrowIfCanceled(result);
    }

    private static void ThrowIfCanceled(in ReadResult result)
    {
        if (result.IsCanceled)
        {
            throw new OperationCanceledException("The WebSocket receive was cancelled.");
        }
    }

    /// <summary>Ends a pending or the next receive with <see cref="OperationCanceledException"/>.</summary>
    public void CancelReceive() => _input.CancelPendingRead();

    public override void Abort()
    {
        if (_state is not (WebSocketState.Closed or WebSocketState.Aborted))
        {
            _state = WebSocketState.Aborted;
        }

        _input.CancelPendingRead();
        _output.CancelPendingFlush();
    }

    public override void Dispose()
    {
        if (_state is not (WebSocketState.Closed or WebSocketState.Aborted))
        {
            _state = WebSocketState.Closed;
        }

        _input.CancelPendingRead();
    }

    public override async Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await ReceiveAsync(buffer.AsMemory(), cancellationToken);
        return result.MessageType == WebSocketMessageType.Close
            ? new WebSocketReceiveResult(0, WebSocketMessageType.Close, true, _closeStatus, _closeDescription)
            : new WebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage);
    }

    public override async ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_state is not (WebSocketState.Open or WebSocketState.CloseSent))
        {
            throw new WebSocketException(WebSocketError.InvalidState, $"The WebSocket is {_state}: nothing more can be received.");
        }

        while (true)
        {
            if (!_inFrame)
            {
                var frame = await ReadFrameHeaderAsync();
                if (frame is { } close)
                {
                    return close;
                }

                if (!_inFrame)
                {
                    continue; // a control frame was handled, or an empty non-final fragment
                }

                if (_remaining == 0)
                {
                    // an empty final frame ends its message
                    _inFrame = false;
                    _inMessage = false;
                    return new ValueWebSocketReceiveResult(0, _messageType, true);
                }
            }

            if (buffer.IsEmpty)
            {
                return new ValueWebSocketReceiveResult(0, _messageType, false);
            }

            var read = await ReadAsync();
            var available = read.Buffer;
            if (available.IsEmpty)
            {
                _input.AdvanceTo(available.Start);
                throw Premature();
            }

            var count = (int)Math.Min(Math.Min(_remaining, available.Length), buffer.Length);
            var payload = available.Slice(0, count);
            payload.CopyTo(buffer.Span);
            _input.AdvanceTo(payload.End);
            _mask = Unmask(buffer.Span[..count], _mask);
            _remaining -= count;
            if (_remaining > 0)
            {
                return new ValueWebSocketReceiveResult(count, _messageType, false);
            }

            _inFrame = false;
            if (_final)
            {
                _inMessage = false;
            }

            return new ValueWebSocketReceiveResult(count, _messageType, _final);
        }
    }

    /// <summary>
    /// Reads the next frame header. A data frame becomes the current frame; a control frame is
    /// handled whole (ping answered, pong ignored); a close frame returns the close result.
    /// </summary>
    private async ValueTask<ValueWebSocketReceiveResult?> ReadFrameHeaderAsync()
    {
        while (true)
        {
            var read = await ReadAsync();
            var buffer = read.Buffer;
            var parsed = TryParseHeader(buffer, out var fin, out var opcode, out var length, out var mask, out var headerLength, out var violation);
            if (violation is not null)
            {
                _input.AdvanceTo(buffer.Start);
                throw await FailAsync(WebSocketCloseStatus.ProtocolError, violation);
            }

            // a header not all here yet, or a control frame (125 bytes at most) not all here yet
            if (!parsed || (opcode >= 0x8 && buffer.Length < headerLength + length))
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    throw Premature();
                }

                continue;
            }

            if (opcode >= 0x8)
            {
                var payload = buffer.Slice(headerLength, length).ToArray();
                _input.AdvanceTo(buffer.GetPosition(headerLength + length));
                Unmask(payload, mask);
                switch (opcode)
                {
                    case 0x9:
                        await SendControlAsync(0xA, payload);
                        return null;
                    case 0xA:
                        return null;
                    default:
                        return await OnCloseFrameAsync(payload);
                }
            }

            _input.AdvanceTo(buffer.GetPosition(headerLength));
            if (length > MaxMessageLength)
            {
                throw await FailAsync(WebSocketCloseStatus.MessageTooBig, $"A frame of {length} bytes, over the maximum payload of {MaxMessageLength}.");
            }

            if (opcode == 0x0 ? !_inMessage : _inMessage)
            {
                throw await FailAsync(WebSocketCloseStatus.ProtocolError, opcode == 0x0 ? "A continuation frame without a message to continue." : "A new message before the previous one ended.");
            }

            if (opcode != 0x0)
            {
                _messageType = opcode == 0x1 ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
            }

            _inMessage = true;
            _final = fin;
            _remaining = length;
            _mask = mask;
            _inFrame = fin || length > 0;
            if (!_inFrame)
            {
                continue; // an empty fragment in the middle of a message
            }

            return null;
        }
    }

    /// <summary>Parses a client frame header; false with a violation for a malformed one, false without for an incomplete one.</summary>
    private static bool TryParseHeader(ReadOnlySequence<byte> buffer, out bool fin, out int opcode, out long length, out int mask, out int headerLength, out string? violation)
    {
        fin = false;
        opcode = 0;
        length = 0;
        mask = 0;
        headerLength = 0;
        violation = null;
        Span<byte> head = stackalloc byte[14];
        var have = (int)Math.Min(buffer.Length, head.Length);
        if (have < 2)
        {
            return false;
        }

        buffer.Slice(0, have).CopyTo(head);
        fin = (head[0] & 0x80) != 0;
        opcode = head[0] & 0x0F;
        if ((head[0] & 0x70) != 0)
        {
            violation = "Reserved bits are set, and no extension was negotiated.";
            return false;
        }

        if (opcode is (> 0x2 and < 0x8) or > 0xA)
        {
            violation = $"Unknown opcode {opcode}.";
            return false;
        }

        if ((head[1] & 0x80) == 0)
        {
            violation = "A client frame is not masked.";
            return false;
        }

        var len7 = head[1] & 0x7F;
        headerLength = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
        if (opcode >= 0x8 && (!fin || len7 > MaxControlPayload))
        {
            violation = !fin ? "A fragmented control frame." : "A control frame longer than 125 bytes.";
            return false;
        }

        if (have < headerLength)
        {
            return false;
        }

        length = len7 switch
        {
            126 => BinaryPrimitives.ReadUInt16BigEndian(head[2..]),
            127 => (long)BinaryPrimitives.ReadUInt64BigEndian(head[2..]),
            _ => len7,
        };
        if (length < 0)
        {
            violation = "A frame length with its most significant bit set.";
            return false;
        }

        mask = BinaryPrimitives.ReadInt32LittleEndian(head[(headerLength - 4)..]);
        return true;
    }

    /// <summary>XORs <paramref name="data"/> with the masking key; returns the key rotated to the byte after it.</summary>
    private static int Unmask(Span<byte> data, int mask)
    {
        if (data.IsEmpty)
        {
            return mask;
        }

        Span<byte> key = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(key, mask);
        for (var i = 0; i < data.Length; i++)
        {
            data[i] ^= key[i & 3];
        }

        var shift = (data.Length & 3) * 8;
        return shift == 0 ? mask : (int)BitOperations.RotateRight((uint)mask, shift);
    }

    private async ValueTask<ValueWebSocketReceiveResult?> OnCloseFrameAsync(byte[] payload)
    {
        if (payload.Length == 1)
        {
            throw await FailAsync(WebSocketCloseStatus.ProtocolError, "A close frame with a one-byte payload.");
        }

        if (payload.Length >= 2)
        {
            var code = BinaryPrimitives.ReadUInt16BigEndian(payload);
            if (!IsValidCloseCode(code))
            {
                throw await FailAsync(WebSocketCloseStatus.ProtocolError, $"Invalid close code {code}.");
            }

            if (!Utf8.IsValid(payload.AsSpan(2)))
            {
                throw await FailAsync(WebSocketCloseStatus.InvalidPayloadData, "A close reason that is not UTF-8.");
            }

            _closeStatus = (WebSocketCloseStatus)code;
            _closeDescription = Encoding.UTF8.GetString(payload, 2, payload.Length - 2);
        }
        else
        {
            _closeStatus = WebSocketCloseStatus.Empty;
            _closeDescription = string.Empty;
        }

        _state = _state == WebSocketState.CloseSent ? WebSocketState.Closed : WebSocketState.CloseReceived;
        return new ValueWebSocketReceiveResult(0, WebSocketMessageType.Close, true);
    }

    private static bool IsValidCloseCode(int code) =>
        code is (>= 1000 and <= 1003) or (>= 1007 and <= 1011) or (>= 3000 and <= 4999);

    private async ValueTask<ReadResult> ReadAsync()
    {
        ReadResult read;
        try
        {
            read = await _input.ReadAsync();
        }
        catch (IOException ex)
        {
            // the connection failed (reset by the peer): as the runtime WebSocket reports it
            _state = WebSocketState.Aborted;
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex.Message, ex);
        }

        ThrowIfCanceled(read);
        return read;
    }

    private WebSocketException Premature()
    {
        _state = WebSocketState.Aborted;
        return new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The remote party closed the WebSocket connection without completing the close handshake.");
    }

    /// <summary>A protocol violation: the close frame with <paramref name="status"/> goes out, and the receive fails.</summary>
    private async ValueTask<WebSocketException> FailAsync(WebSocketCloseStatus status, string message)
    {
        try
        {
            await CloseOutputAsync(status, null, CancellationToken.None);
        }
        catch (Exception ex) when (ex is WebSocketException or InvalidOperationException or IOException)
        {
        }

        return new WebSocketException(WebSocketError.Faulted, message);
    }

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        byte[] payload;
        if (closeStatus == WebSocketCloseStatus.Empty)
        {
            payload = [];
        }
        else
        {
            var reason = statusDescription ?? string.Empty;
            payload = new byte[2 + Encoding.UTF8.GetByteCount(reason)];
            if (payload.Length > MaxControlPayload)
            {
                throw new ArgumentException("The close reason is longer than 123 bytes.", nameof(statusDescription));
            }

            BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)closeStatus);
            Encoding.UTF8.GetBytes(reason, payload.AsSpan(2));
        }

        lock (this)
        {
            if (_closeSent || _state is WebSocketState.Aborted or WebSocketState.Closed)
            {
                return Task.CompletedTask;
            }

            _closeSent = true;
            _state = _state == WebSocketState.CloseReceived ? WebSocketState.Closed : WebSocketState.CloseSent;
        }

        return SendControlAsync(0x8, payload, close: true).AsTask();
    }

    public override async Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        await CloseOutputAsync(closeStatus, statusDescription, cancellationToken);
        while (_state == WebSocketState.CloseSent)
        {
            await ReceiveAsync(Memory<byte>.Empty, cancellationToken);
        }
    }

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        SendAsync(buffer.AsMemory(), messageType, endOfMessage, cancellationToken).AsTask();

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken = default)
    {
        if (messageType == WebSocketMessageType.Close || !endOfMessage)
        {
            throw new NotSupportedException("Only whole text or binary messages are sent here; use CloseOutputAsync to close.");
        }

        var frame = new byte[WebSocketTransport.FrameLength(buffer.Length)];
        WebSocketTransport.WriteFrame(frame, buffer.Span, messageType == WebSocketMessageType.Binary);
        return SendFramesAsync(frame);
    }

    /// <summary>
    /// Sends whole frames already laid out by <c>WebSocketTransport.WriteFrame</c>, in one
    /// write. Throws <see cref="WebSocketException"/> once a close frame has gone out.
    /// </summary>
    public ValueTask SendFramesAsync(ReadOnlyMemory<byte> frames)
    {
        lock (this)
        {
            if (_closeSent || _state == WebSocketState.Aborted)
            {
                return ValueTask.FromException(ClosedForData());
            }

            if (_writing)
            {
                return WaitThenSendAsync(frames);
            }

            _writing = true;
        }

        // no state machine of its own: a write that completes at once allocates nothing, one that
        // waits for the client has one (WriteThenReleaseAsync's)
        return WriteThenReleaseAsync(frames);
    }

    private static WebSocketException ClosedForData() => new(WebSocketError.InvalidState, "The WebSocket close frame has been sent.");

    /// <summary>A data write that comes while a control frame is being written (data writes never overlap: the session serialises them).</summary>
    private async ValueTask WaitThenSendAsync(ReadOnlyMemory<byte> frames)
    {
        while (true)
        {
            Task wait;
            lock (this)
            {
                if (_closeSent || _state == WebSocketState.Aborted)
                {
                    throw ClosedForData();
                }

                if (!_writing)
                {
                    _writing = true;
                    break;
                }

                wait = (_writerFree ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
            }

            await wait;
        }

        await WriteThenReleaseAsync(frames);
    }

    /// <summary>Sends a control frame now, or right after the write under way.</summary>
    private ValueTask SendControlAsync(int opcode, byte[] payload, bool close = false)
    {
        var frame = new byte[WebSocketTransport.FrameLength(payload.Length)];
        WebSocketTransport.WriteFrame(frame, payload, opcode);
        lock (this)
        {
            if (!close && _closeSent)
            {
                return ValueTask.CompletedTask; // nothing may follow a close frame
            }

            if (_writing)
            {
                // a later pong replaces the one waiting; nothing is queued after a close frame
                if (close)
                {
                    _pendingClose = frame;
                }
                else
                {
                    _pendingPong = frame;
                }

                return ValueTask.CompletedTask;
            }

            _writing = true;
        }

        return WriteThenReleaseAsync(frame);
    }

    /// <summary>Writes and flushes as the one writer, then the control frames that came meanwhile, then lets go.</summary>
    private async ValueTask WriteThenReleaseAsync(ReadOnlyMemory<byte> bytes)
    {
        try
        {
            while (true)
            {
                _output.Write(bytes.Span);
                var flushed = await _output.FlushAsync();
                if (flushed.IsCanceled || flushed.IsCompleted)
                {
                    throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The connection closed while sending.");
                }

                lock (this)
                {
                    // the pong first: once a close frame waits, no pong is added
                    if (_pendingPong is { } pong)
                    {
                        bytes = pong;
                        _pendingPong = null;
                    }
                    else if (_pendingClose is { } closeFrame)
                    {
                        bytes = closeFrame;
                        _pendingClose = null;
                    }
                    else
                    {
                        break;
                    }
                }
            }
        }
        finally
        {
            TaskCompletionSource? free;
            lock (this)
            {
                _writing = false;
                _pendingPong = null;
                _pendingClose = null;
                free = _writerFree;
                _writerFree = null;
            }

            free?.TrySetResult();
        }
    }
}
