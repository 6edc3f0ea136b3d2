using System.Buffers;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using EngineIO;

namespace SocketIO.Parser;

/// <summary>
/// The default Socket.IO parser: <c>&lt;type&gt;[&lt;attachments&gt;-][&lt;nsp&gt;,][&lt;id&gt;][JSON]</c>,
/// binary values as placeholders followed by binary attachments.
/// </summary>
public sealed class JsonPacketParser : ISocketIOParser
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    [ThreadStatic]
    private static JsonPacketParser? t_writerOwner;

    private static readonly string[] s_reserved = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

    /// <summary>The default parser of the reference server (socket.io-parser), accepting at most <paramref name="maxAttachments"/> binary attachments per packet.</summary>
    public JsonPacketParser(JsonSerializerOptions? options = null, int maxAttachments = 10)
    {
        SerializerOptions = CreateOptions(options);
        MaxAttachments = maxAttachments;
    }

    /// <summary>The serializer settings for event arguments, with the binary converters.</summary>
    public JsonSerializerOptions SerializerOptions { get; }

    /// <summary>Binary attachments a packet may announce.</summary>
    public int MaxAttachments { get; }

    /// <summary>The web defaults (or <paramref name="baseOptions"/>) with the binary converters added.</summary>
    public static JsonSerializerOptions CreateOptions(JsonSerializerOptions? baseOptions)
    {
        var options = baseOptions is null ? new JsonSerializerOptions(JsonSerializerDefaults.Web) : new JsonSerializerOptions(baseOptions);
        options.Converters.Insert(0, new ByteArrayConverter());
        options.Converters.Insert(0, new ReadOnlyMemoryConverter());
        options.Converters.Insert(0, new MemoryConverter());
        options.Converters.Insert(0, new ArraySegmentConverter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <inheritdoc/>
    public EncodedPacket Encode(SocketPacketType type, string nsp, long? id, object? data, bool isVolatile = false)
    {
        ArgumentNullException.ThrowIfNull(nsp);
        type = type switch
        {
            SocketPacketType.BinaryEvent => SocketPacketType.Event,
            SocketPacketType.BinaryAck => SocketPacketType.Ack,
            _ => type,
        };
        var json = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        json.ResetWrittenCount();
        List<ReadOnlyMemory<byte>>? attachments = null;
        if (data is not null)
        {
            var writer = t_writer;
            if (writer is null || !ReferenceEquals(t_writerOwner, this))
            {
                // the cached writer carries its parser's encoder: another parser needs its own
                writer?.Dispose();
                writer = t_writer = new Utf8JsonWriter(json, new JsonWriterOptions { SkipValidation = true, Encoder = SerializerOptions.Encoder });
                t_writerOwner = this;
            }
            else
            {
                writer.Reset(json);
            }

            attachments = type is SocketPacketType.Event or SocketPacketType.Ack ? [] : null;
            BinaryScope.Writing = attachments;
            try
            {
                JsonSerializer.Serialize(writer, data, data.GetType(), SerializerOptions);
                writer.Flush();
            }
            finally
            {
                BinaryScope.Writing = null;
            }
        }

        var count = attachments?.Count ?? 0;
        if (count > 0)
        {
            type = type == SocketPacketType.Event ? SocketPacketType.BinaryEvent : SocketPacketType.BinaryAck;
        }

        Span<byte> header = stackalloc byte[48];
        var h = 0;
        header[h++] = (byte)('0' + (int)type);
        if (count > 0)
        {
            Utf8Formatter.TryFormat(count, header[h..], out var w);
            h += w;
            header[h++] = (byte)'-';
        }

        var nspBytes = nsp == "/" ? 0 : Encoding.UTF8.GetByteCount(nsp) + 1;
        Span<byte> idBytes = stackalloc byte[24];
        var idLength = 0;
        if (id is { } ackId)
        {
            Utf8Formatter.TryFormat(ackId, idBytes, out idLength);
        }

        var frame = new byte[1 + h + nspBytes + idLength + json.WrittenCount];
        frame[0] = (byte)EnginePacketType.Message;
        var pos = 1;
        header[..h].CopyTo(frame.AsSpan(pos));
        pos += h;
        if (nspBytes > 0)
        {
            pos += Encoding.UTF8.GetBytes(nsp, frame.AsSpan(pos));
            frame[pos++] = (byte)',';
        }

        idBytes[..idLength].CopyTo(frame.AsSpan(pos));
        pos += idLength;
        json.WrittenSpan.CopyTo(frame.AsSpan(pos));

        var messages = new EngineMessage[1 + count];
        messages[0] = EngineMessage.TextFrame(frame, isVolatile);
        for (var i = 0; i < count; i++)
        {
            messages[i + 1] = EngineMessage.Binary(attachments![i], isVolatile);
        }

        return new EncodedPacket(messages);
    }

    /// <inheritdoc/>
    public IPacketDecoder CreateDecoder() => new Decoder(this);

    private sealed class Decoder(JsonPacketParser parser) : IPacketDecoder
    {
        private SocketPacket? _pending;
        private int _expected;
        private List<ReadOnlyMemory<byte>>? _attachments;

        public DecodeStatus Decode(EngineMessage message, out SocketPacket? packet, out string? error)
        {
            packet = null;
            error = null;
            if (message.IsBinary)
            {
                if (_pending is null || _attachments is null)
                {
                    error = "got binary data when not reconstructing a packet";
                    return DecodeStatus.Error;
                }

                _attachments.Add(message.Data);
                if (_attachments.Count < _expected)
                {
                    return DecodeStatus.NeedMore;
                }

                packet = Complete(_pending, _attachments, out error);
                _pending = null;
                _attachments = null;
                return packet is null ? DecodeStatus.Error : DecodeStatus.Complete;
            }

            if (_pending is not null)
            {
                error = "got plain text data when reconstructing a packet";
                return DecodeStatus.Error;
            }

            var decoded = parser.DecodeText(message.Data, out var attachments, out error);
            if (decoded is null)
            {
                return DecodeStatus.Error;
            }

            if (attachments > 0)
            {
                _pending = decoded;
                _expected = attachments;
                _attachments = new List<ReadOnlyMemory<byte>>(attachments);
                return DecodeStatus.NeedMore;
            }

            packet = decoded.Type is SocketPacketType.BinaryEvent or SocketPacketType.BinaryAck ? Complete(decoded, [], out error) : decoded;
            return packet is null ? DecodeStatus.Error : DecodeStatus.Complete;
        }

        private static SocketPacket? Complete(SocketPacket pending, List<ReadOnlyMemory<byte>> attachments, out string? error)
        {
            error = null;
            if (pending.Data is { } data && !SafePlaceholdersValid(data, attachments.Count))
            {
                error = "illegal attachments";
                return null;
            }

            return new SocketPacket
            {
                Type = pending.Type,
                Namespace = pending.Namespace,
                Id = pending.Id,
                Data = pending.Data,
                Attachments = attachments,
            };
        }

        private static bool SafePlaceholdersValid(JsonElement element, int count)
        {
            try
            {
                return PlaceholdersValid(element, count);
            }
            catch (InvalidOperationException)
            {
                // property names that are not valid UTF-16 (lone surrogate escapes)
                return false;
            }
        }

        private static bool PlaceholdersValid(JsonElement element, int count)
        {
            switch (element.ValueKind)
            {
                case JsonValueKind.Object:
                    // like the reference parser, only {"_placeholder": true, ...} is a placeholder
                    if (element.TryGetProperty("_placeholder", out var flag) && flag.ValueKind == JsonValueKind.True)
                    {
                        return BinaryScope.TryGetPlaceholder(element, out var num) && num < count;
                    }

                    foreach (var property in element.EnumerateObject())
                    {
                        if (!PlaceholdersValid(property.Value, count))
                        {
                            return false;
                        }
                    }

                    return true;
                case JsonValueKind.Array:
                    foreach (var item in element.EnumerateArray())
                    {
                        if (!PlaceholdersValid(item, count))
                        {
                            return false;
                        }
                    }

                    return true;
                default:
                    return true;
            }
        }
    }

    internal SocketPacket? DecodeText(ReadOnlyMemory<byte> text, out int attachments, out string? error)
    {
        attachments = 0;
        error = null;
        var span = text.Span;
        if (span.IsEmpty || span[0] < '0' || span[0] > '6')
        {
            error = "unknown packet type";
            return null;
        }

        // the transports refuse text that is not UTF-8; a packet from elsewhere gets the same check
        // here, so that no handler meets it later as an exception
        if (!Utf8.IsValid(span))
        {
            error = "invalid payload: not UTF-8";
            return null;
        }

        var type = (SocketPacketType)(span[0] - '0');
        var i = 1;
        if (type is SocketPacketType.BinaryEvent or SocketPacketType.BinaryAck)
        {
            var start = i;
            while (i < span.Length && span[i] != '-')
            {
                i++;
            }

            if (i == span.Length || i == start || !Utf8Parser.TryParse(span[start..i], out int n, out var consumed) || consumed != i - start || n < 0)
            {
                error = "illegal attachments";
                return null;
            }

            if (n > MaxAttachments)
            {
                error = "too many attachments";
                return null;
            }

            attachments = n;
            i++;
        }

        var nsp = "/";
        if (i < span.Length && span[i] == '/')
        {
            var start = i;
            while (i < span.Length && span[i] != ',')
            {
                i++;
            }

            nsp = Encoding.UTF8.GetString(span[start..i]);
            if (i < span.Length)
            {
                i++;
            }
        }

        long? id = null;
        if (i < span.Length && span[i] is >= (byte)'0' and <= (byte)'9')
        {
            var start = i;
            while (i < span.Length && span[i] is >= (byte)'0' and <= (byte)'9')
            {
                i++;
            }

            if (i - start > 15 || !Utf8Parser.TryParse(span[start..i], out long value, out _))
            {
                error = "invalid ack id";
                return null;
            }

            id = value;
        }

        JsonElement? data = null;
        if (i < span.Length)
        {
            try
            {
                using var doc = JsonDocument.Parse(text[i..], new JsonDocumentOptions { MaxDepth = 64 });
                data = doc.RootElement.Clone();
            }
            catch (JsonException)
            {
                error = "invalid payload";
                return null;
            }

            // escapes that are not text (a lone surrogate, "\ud800") parse, but no string can be
            // read from them: refused here rather than met by a handler as an exception
            if (span[i..].IndexOf("\\u"u8) >= 0 && !EscapesAreText(span[i..]))
            {
                error = "invalid payload: an escape that is not text";
                return null;
            }
        }

        bool valid;
        try
        {
            valid = IsPayloadValid(type, data);
        }
        catch (InvalidOperationException)
        {
            // an event name that is not valid text (invalid UTF-8, lone surrogate)
            valid = false;
        }

        if (!valid)
        {
            error = "invalid payload";
            return null;
        }

        return new SocketPacket { Type = type, Namespace = nsp, Id = id, Data = data };
    }

    /// <summary>Whether every escaped string of <paramref name="json"/> (already parsed) unescapes to valid UTF-16.</summary>
    private static bool EscapesAreText(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 64 });
        char[]? buffer = null;
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped)
                {
                    var length = reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length;
                    if (buffer is null || buffer.Length < length)
                    {
                        if (buffer is not null)
                        {
                            ArrayPool<char>.Shared.Return(buffer);
                        }

                        buffer = ArrayPool<char>.Shared.Rent(length);
                    }

                    reader.CopyString(buffer);
                }
            }

            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<char>.Shared.Return(buffer);
            }
        }
    }

    internal static bool IsPayloadValid(SocketPacketType type, JsonElement? data) => type switch
    {
        SocketPacketType.Connect => data is null || data.Value.ValueKind == JsonValueKind.Object,
        SocketPacketType.Disconnect => data is null,
        SocketPacketType.ConnectError => data is { ValueKind: JsonValueKind.Object or JsonValueKind.String },
        SocketPacketType.Event or SocketPacketType.BinaryEvent => data is { ValueKind: JsonValueKind.Array } d && d.GetArrayLength() > 0 && IsEventName(d[0]),
        SocketPacketType.Ack or SocketPacketType.BinaryAck => data is { ValueKind: JsonValueKind.Array },
        _ => false,
    };

    private static bool IsEventName(JsonElement first) =>
        first.ValueKind == JsonValueKind.Number
        || (first.ValueKind == JsonValueKind.String && Array.IndexOf(s_reserved, first.GetString()) < 0);
}
