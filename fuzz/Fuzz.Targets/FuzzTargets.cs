using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.Unicode;
using Builder.Contracts;
using EngineIO;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SocketIO.Parser;

namespace Fuzz.Targets;

/// <summary>
/// The fuzz targets: each feeds one input to one parser of the server. A target returns normally
/// for any input the parser handles as designed, valid or not (a false/Error result, or the
/// parser's own documented exception for bad input, such as <see cref="WebSocketException"/> for
/// a malformed frame); any other exception escapes and is a crash to AFL and a failure to the
/// replay tests. A broken invariant (a decoded payload that does not survive re-encoding, say)
/// is reported as <see cref="FuzzInvariantException"/>.
/// </summary>
public static class FuzzTargets
{
    /// <summary>The Engine.IO polling payload decoder (<c>PollingPayload.TryDecode</c>).</summary>
    public const string Polling = "polling";

    /// <summary>The Socket.IO packet decoder with binary attachment reassembly (<see cref="JsonPacketParser"/>).</summary>
    public const string SocketIOPacket = "socketio";

    /// <summary>The WebSocket frame reader of the fast path (<c>PipeWebSocket.ReceiveAsync</c>).</summary>
    public const string WebSocketFrames = "websocket";

    /// <summary>The HTTP request-head parser in front of Kestrel (<c>RequestHead.TryParse</c>).</summary>
    public const string RequestHeadParser = "requesthead";

    /// <summary>The gateway's event validator (<see cref="EventValidator"/>), fed a producer's request body.</summary>
    public const string Events = "events";

    /// <summary>Every target, in the order the runner uses.</summary>
    public static IReadOnlyList<string> All { get; } = [Polling, SocketIOPacket, WebSocketFrames, RequestHeadParser, Events];

    private static readonly KestrelServerLimits s_limits = new();

    // created on first use: instrumented code must not run before SharpFuzz sets up its coverage map
    private static JsonPacketParser? s_parser;

    /// <summary>Runs <paramref name="target"/> on <paramref name="input"/>.</summary>
    public static void Run(string target, ReadOnlySpan<byte> input)
    {
        switch (target)
        {
            case Polling:
                RunPolling(input);
                break;
            case SocketIOPacket:
                RunSocketIO(input);
                break;
            case WebSocketFrames:
                RunWebSocket(input);
                break;
            case RequestHeadParser:
                RunRequestHead(input);
                break;
            case Events:
                RunEvents(input);
                break;
            default:
                throw new ArgumentException($"unknown fuzz target '{target}'; expected one of {string.Join(", ", All)}", nameof(target));
        }
    }

    /// <summary>
    /// A polling POST body: decoded; a payload that decodes must encode back to a payload that
    /// decodes to the same packets.
    /// </summary>
    private static void RunPolling(ReadOnlySpan<byte> input)
    {
        var packets = new List<EngineMessage>();
        if (!PollingPayload.TryDecode(input.ToArray(), packets))
        {
            return;
        }

        var encoded = new ArrayBufferWriter<byte>();
        PollingPayload.Encode(packets, encoded);
        var again = new List<EngineMessage>();
        if (!PollingPayload.TryDecode(encoded.WrittenMemory, again) || again.Count != packets.Count)
        {
            throw new FuzzInvariantException($"a decoded payload of {packets.Count} packets does not decode again after encoding");
        }

        for (var i = 0; i < packets.Count; i++)
        {
            if (packets[i].IsBinary != again[i].IsBinary || !packets[i].Frame.Span.SequenceEqual(again[i].Frame.Span))
            {
                throw new FuzzInvariantException($"packet {i} changed in an encode/decode round trip");
            }
        }
    }

    /// <summary>
    /// A sequence of Engine.IO messages, separated by 0x1E, given to one connection's decoder:
    /// a message starting with 'b' is a binary message of the bytes after it, any other is a text
    /// message. Text messages are valid UTF-8, as both transports guarantee (a WebSocket session
    /// checks each text message; polling payloads are checked the same way). The decoder must
    /// answer every message with a status (an error ends the connection, as the server does).
    /// </summary>
    private static void RunSocketIO(ReadOnlySpan<byte> input)
    {
        var decoder = (s_parser ??= new JsonPacketParser()).CreateDecoder();
        var rest = input;
        while (true)
        {
            var index = rest.IndexOf((byte)0x1E);
            var part = index < 0 ? rest : rest[..index];
            var binary = part.Length > 0 && part[0] == (byte)'b';
            if (!binary && !Utf8.IsValid(part))
            {
                return; // the transport refuses a text message that is not UTF-8 before any decoder sees it
            }

            var message = binary ? EngineMessage.Binary(part[1..].ToArray()) : EngineMessage.Text(part);
            var status = decoder.Decode(message, out var packet, out var error);
            switch (status)
            {
                case DecodeStatus.Error:
                    if (string.IsNullOrEmpty(error))
                    {
                        throw new FuzzInvariantException("the decoder reported an error without a message");
                    }

                    return;
                case DecodeStatus.Complete:
                    if (packet is null)
                    {
                        throw new FuzzInvariantException("a complete packet that is null");
                    }

                    // what the server reads next: the payload as text, the event name
                    _ = packet.Data?.GetRawText();
                    break;
                case DecodeStatus.NeedMore:
                    break;
                default:
                    throw new FuzzInvariantException($"unknown decode status {status}");
            }

            if (index < 0)
            {
                return;
            }

            rest = rest[(index + 1)..];
        }
    }

    /// <summary>
    /// The bytes a client sends after the handshake, read with receive buffers of the size the
    /// first byte picks (1..256) until the close frame, the end of the input or a protocol
    /// violation (<see cref="WebSocketException"/>).
    /// </summary>
    private static void RunWebSocket(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var size = input[0] + 1;
        var frames = input[1..];
        var toServer = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        var toClient = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        toServer.Writer.Write(frames);
        toServer.Writer.FlushAsync().AsTask().GetAwaiter().GetResult();
        toServer.Writer.Complete();
        using var socket = new PipeWebSocket(new DuplexPipe(toServer.Reader, toClient.Writer));
        var buffer = new byte[size];
        // every receive consumes at least one byte or ends the loop: bounded by the input's length
        for (var i = 0; i <= frames.Length + 1; i++)
        {
            ValueWebSocketReceiveResult result;
            try
            {
                var receive = socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                if (!receive.IsCompleted)
                {
                    throw new FuzzInvariantException("a receive over a completed input did not complete");
                }

                result = receive.GetAwaiter().GetResult();
            }
            catch (WebSocketException)
            {
                return; // a protocol violation or the end of the input: the documented error
            }

            if (result.Count > size)
            {
                throw new FuzzInvariantException($"received {result.Count} bytes into a buffer of {size}");
            }

            if (result.MessageType == WebSocketMessageType.Close)
            {
                return;
            }
        }

        throw new FuzzInvariantException($"more receives than input bytes ({frames.Length}) without an end");
    }

    /// <summary>
    /// The first bytes of a connection given to the fast path's request-head parser, as one
    /// segment and split in two at the position the first byte picks. Both must agree; a parsed
    /// head must be one the parser's own rules allow.
    /// </summary>
    private static void RunRequestHead(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var bytes = input[1..].ToArray();
        var whole = new ReadOnlySequence<byte>(bytes);
        var parsed = RequestHead.TryParse(whole, s_limits, out var head, out var end);
        var split = Math.Min(input[0], bytes.Length);
        var parsedSplit = RequestHead.TryParse(Segments(bytes, split), s_limits, out var headSplit, out _);
        if (parsed != parsedSplit)
        {
            throw new FuzzInvariantException($"the parser answers {parsed} for one segment and {parsedSplit} for two split at {split}");
        }

        if (!parsed)
        {
            return;
        }

        if (head.Method != headSplit.Method || head.Target != headSplit.Target || head.Headers.Count != headSplit.Headers.Count)
        {
            throw new FuzzInvariantException("the head parsed from two segments differs from the one parsed from one");
        }

        var consumed = whole.Slice(whole.Start, end).Length;
        if (consumed < 4 || consumed > bytes.Length || !bytes.AsSpan(0, (int)consumed).EndsWith("\r\n\r\n"u8))
        {
            throw new FuzzInvariantException($"the head ends at {consumed}, not after its blank line");
        }

        if (!head.Target.StartsWith('/') || head.Path + head.QueryString != head.Target || !head.Headers.ContainsKey("Host"))
        {
            throw new FuzzInvariantException($"a parsed head with target '{head.Target}', path '{head.Path}', query '{head.QueryString}'");
        }

        // the request-only context AllowRequest sees
        var context = head.ToHttpContext(new DefaultConnectionContext("fuzz"));
        if (context.Request.Method != head.Method || context.Request.Headers.Count != head.Headers.Count)
        {
            throw new FuzzInvariantException("the request-only context differs from the parsed head");
        }
    }

    /// <summary>
    /// A producer's request body to <c>POST /api/projects/{id}/events</c>, through the same steps
    /// as the gateway: UTF-8, JSON (a <see cref="JsonException"/> is bad input), an object with a string
    /// <c>type</c> and a <c>payload</c>, then the validator; every error names a field.
    /// </summary>
    private static void RunEvents(ReadOnlySpan<byte> input)
    {
        if (!Utf8.IsValid(input))
        {
            return; // the gateway answers 400 "The body is not valid UTF-8." before parsing
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(input.ToArray());
        }
        catch (JsonException)
        {
            return;
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("payload", out var payload))
            {
                return;
            }

            if (!EventValidator.TryGetText(type, out var name))
            {
                return; // a type that is not text: 400 naming the field "type"
            }

            foreach (var error in EventValidator.Validate(name, payload))
            {
                if (string.IsNullOrEmpty(error.Field) || string.IsNullOrEmpty(error.Message))
                {
                    throw new FuzzInvariantException("a validation error without a field or a message");
                }
            }
        }
    }

    private static ReadOnlySequence<byte> Segments(byte[] bytes, int split)
    {
        if (split <= 0 || split >= bytes.Length)
        {
            return new ReadOnlySequence<byte>(bytes);
        }

        var first = new Segment(bytes.AsMemory(0, split), 0);
        var second = first.Append(bytes.AsMemory(split));
        return new ReadOnlySequence<byte>(first, 0, second, second.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}

/// <summary>A fuzz target found an input that breaks one of its parser's invariants.</summary>
public sealed class FuzzInvariantException(string message) : Exception(message);
