using System.Buffers;
using System.Text.Json;
using EngineIO;
using MessagePack;

namespace SocketIO.Parser;

/// <summary>
/// The format of npm's <c>socket.io-msgpack-parser</c> 3.x: each packet is one binary Engine.IO
/// message holding the MessagePack map <c>{type, nsp, data?, id?}</c>; binary values are
/// MessagePack <c>bin</c> in place (no attachments), packet types 0 to 4 only. Event arguments
/// go through System.Text.Json as with the default parser (same converters, same
/// <see cref="SocketArgs"/>), so handlers do not depend on the format.
/// </summary>
public sealed class MessagePackPacketParser : ISocketIOParser
{
    /// <summary>Deepest nesting accepted in a decoded packet.</summary>
    public const int MaxDepth = 64;

    /// <summary>A parser whose event arguments are serialized with <paramref name="options"/> (the web defaults when null).</summary>
    public MessagePackPacketParser(JsonSerializerOptions? options = null)
    {
        SerializerOptions = JsonPacketParser.CreateOptions(options);
    }

    /// <summary>The serializer settings for event arguments, with the binary converters.</summary>
    public JsonSerializerOptions SerializerOptions { get; }

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

        var buffer = new ArrayBufferWriter<byte>(256);
        var writer = new MessagePackWriter(buffer);
        writer.WriteMapHeader(2 + (data is null ? 0 : 1) + (id is null ? 0 : 1));
        writer.Write("type");
        writer.Write((int)type);
        writer.Write("nsp");
        writer.Write(nsp);
        if (data is not null)
        {
            // binary values become placeholders while serializing, then bin in place
            var attachments = new List<ReadOnlyMemory<byte>>();
            BinaryScope.Writing = attachments;
            JsonDocument json;
            try
            {
                json = JsonSerializer.SerializeToDocument(data, data.GetType(), SerializerOptions);
            }
            finally
            {
                BinaryScope.Writing = null;
            }

            using (json)
            {
                writer.Write("data");
                WriteValue(ref writer, json.RootElement, attachments);
            }
        }

        if (id is { } ackId)
        {
            writer.Write("id");
            writer.Write(ackId);
        }

        writer.Flush();
        return new EncodedPacket([EngineMessage.Binary(buffer.WrittenSpan.ToArray(), isVolatile)]);
    }

    /// <inheritdoc/>
    public IPacketDecoder CreateDecoder() => Decoder.Instance;

    private static void WriteValue(ref MessagePackWriter writer, JsonElement element, List<ReadOnlyMemory<byte>> attachments)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                if (attachments.Count > 0 && BinaryScope.TryGetPlaceholder(element, out var num) && num < attachments.Count)
                {
                    writer.Write(attachments[num].Span);
                    return;
                }

                writer.WriteMapHeader(element.GetPropertyCount());
                foreach (var property in element.EnumerateObject())
                {
                    writer.Write(property.Name);
                    WriteValue(ref writer, property.Value, attachments);
                }

                return;
            case JsonValueKind.Array:
                writer.WriteArrayHeader(element.GetArrayLength());
                foreach (var item in element.EnumerateArray())
                {
                    WriteValue(ref writer, item, attachments);
                }

                return;
            case JsonValueKind.String:
                writer.Write(element.GetString());
                return;
            case JsonValueKind.Number:
                if (element.TryGetInt64(out var l))
                {
                    writer.Write(l);
                }
                else if (element.TryGetUInt64(out var u))
                {
                    writer.Write(u);
                }
                else
                {
                    writer.Write(element.GetDouble());
                }

                return;
            case JsonValueKind.True:
                writer.Write(true);
                return;
            case JsonValueKind.False:
                writer.Write(false);
                return;
            default:
                writer.WriteNil();
                return;
        }
    }

    private sealed class Decoder : IPacketDecoder
    {
        public static readonly Decoder Instance = new();

        public DecodeStatus Decode(EngineMessage message, out SocketPacket? packet, out string? error)
        {
            packet = null;
            if (!message.IsBinary)
            {
                error = "expected a binary MessagePack packet";
                return DecodeStatus.Error;
            }

            try
            {
                packet = Read(message.Data, out error);
            }
            catch (MessagePackSerializationException)
            {
                error = "invalid MessagePack";
            }
            catch (EndOfStreamException)
            {
                error = "truncated MessagePack";
            }
            catch (InvalidOperationException)
            {
                // an event name that is not valid text
                error = "invalid payload";
            }

            return packet is null ? DecodeStatus.Error : DecodeStatus.Complete;
        }

        private static SocketPacket? Read(ReadOnlyMemory<byte> bytes, out string? error)
        {
            var reader = new MessagePackReader(bytes);
            if (reader.NextMessagePackType != MessagePackType.Map)
            {
                error = "invalid packet: not a map";
                return null;
            }

            var fields = reader.ReadMapHeader();
            long? type = null;
            string? nsp = null;
            long? id = null;
            JsonElement? data = null;
            List<ReadOnlyMemory<byte>> attachments = [];
            for (var i = 0; i < fields; i++)
            {
                if (reader.NextMessagePackType != MessagePackType.String)
                {
                    reader.Skip();
                    reader.Skip();
                    continue;
                }

                var key = reader.ReadString();
                if (IsUndefined(ref reader))
                {
                    reader.Skip(); // notepack writes a field set to undefined (the client's data of a CONNECT without auth)
                    continue;
                }

                switch (key)
                {
                    case "type" when reader.NextMessagePackType == MessagePackType.Integer:
                        type = reader.ReadInt64();
                        break;
                    case "type":
                        error = "invalid packet type";
                        return null;
                    case "nsp" when reader.NextMessagePackType == MessagePackType.String:
                        nsp = reader.ReadString();
                        break;
                    case "nsp":
                        error = "invalid namespace";
                        return null;
                    case "id" when reader.NextMessagePackType == MessagePackType.Integer:
                        id = reader.ReadInt64();
                        break;
                    case "id" when reader.NextMessagePackType == MessagePackType.Nil:
                        reader.ReadNil(); // undefined
                        break;
                    case "id":
                        error = "invalid packet id";
                        return null;
                    case "data" when reader.NextMessagePackType == MessagePackType.Nil:
                        reader.ReadNil(); // undefined
                        break;
                    case "data":
                        var json = new ArrayBufferWriter<byte>(256);
                        using (var writer = new Utf8JsonWriter(json))
                        {
                            ReadValue(ref reader, writer, attachments, 0);
                        }

                        data = JsonSerializer.Deserialize<JsonElement>(json.WrittenSpan);
                        break;
                    default:
                        reader.Skip();
                        break;
                }
            }

            if (!reader.End)
            {
                error = "invalid packet: trailing bytes";
                return null;
            }

            if (type is not (>= 0 and <= (int)SocketPacketType.ConnectError))
            {
                error = "invalid packet type";
                return null;
            }

            if (nsp is null)
            {
                error = "invalid namespace";
                return null;
            }

            if (id is < 0)
            {
                error = "invalid packet id";
                return null;
            }

            var packetType = (SocketPacketType)type.Value;
            if (!JsonPacketParser.IsPayloadValid(packetType, data))
            {
                error = "invalid payload";
                return null;
            }

            if (attachments.Count > 0)
            {
                packetType = packetType switch
                {
                    SocketPacketType.Event => SocketPacketType.BinaryEvent,
                    SocketPacketType.Ack => SocketPacketType.BinaryAck,
                    _ => packetType,
                };
            }

            error = null;
            return new SocketPacket { Type = packetType, Namespace = nsp, Id = id, Data = data, Attachments = attachments };
        }

        private static void ReadValue(ref MessagePackReader reader, Utf8JsonWriter writer, List<ReadOnlyMemory<byte>> attachments, int depth)
        {
            if (depth > MaxDepth)
            {
                throw new MessagePackSerializationException("nested too deeply");
            }

            if (IsUndefined(ref reader))
            {
                reader.Skip();
                writer.WriteNullValue(); // as JSON.stringify in an array
                return;
            }

            switch (reader.NextMessagePackType)
            {
                case MessagePackType.Nil:
                    reader.ReadNil();
                    writer.WriteNullValue();
                    break;
                case MessagePackType.Boolean:
                    writer.WriteBooleanValue(reader.ReadBoolean());
                    break;
                case MessagePackType.Integer:
                    if (reader.NextCode == MessagePackCode.UInt64)
                    {
                        writer.WriteNumberValue(reader.ReadUInt64());
                    }
                    else
                    {
                        writer.WriteNumberValue(reader.ReadInt64());
                    }

                    break;
                case MessagePackType.Float:
                    var d = reader.ReadDouble();
                    if (double.IsFinite(d))
                    {
                        writer.WriteNumberValue(d);
                    }
                    else
                    {
                        writer.WriteNullValue(); // as JSON.stringify
                    }

                    break;
                case MessagePackType.String:
                    writer.WriteStringValue(reader.ReadString());
                    break;
                case MessagePackType.Binary:
                    var bin = reader.ReadBytes() ?? default;
                    writer.WriteStartObject();
                    writer.WriteBoolean("_placeholder", true);
                    writer.WriteNumber("num", attachments.Count);
                    writer.WriteEndObject();
                    attachments.Add(bin.ToArray());
                    break;
                case MessagePackType.Array:
                    var length = reader.ReadArrayHeader();
                    writer.WriteStartArray();
                    for (var i = 0; i < length; i++)
                    {
                        ReadValue(ref reader, writer, attachments, depth + 1);
                    }

                    writer.WriteEndArray();
                    break;
                case MessagePackType.Map:
                    var count = reader.ReadMapHeader();
                    writer.WriteStartObject();
                    for (var i = 0; i < count; i++)
                    {
                        // notepack writes string keys; another key is written as its text
                        var key = reader.NextMessagePackType == MessagePackType.String ? reader.ReadString() : KeyText(ref reader);
                        writer.WritePropertyName(key ?? "null");
                        ReadValue(ref reader, writer, attachments, depth + 1);
                    }

                    writer.WriteEndObject();
                    break;
                default:
                    throw new MessagePackSerializationException("unsupported MessagePack type (extension)");
            }
        }

        /// <summary>notepack.io's <c>undefined</c>: the fixext 1 of type 0 (<c>d4 00 00</c>).</summary>
        private static bool IsUndefined(ref MessagePackReader reader)
        {
            if (reader.NextMessagePackType != MessagePackType.Extension)
            {
                return false;
            }

            var peek = reader.CreatePeekReader();
            var header = peek.ReadExtensionFormatHeader();
            return header.TypeCode == 0 && header.Length == 1;
        }

        private static string KeyText(ref MessagePackReader reader) => reader.NextMessagePackType switch
        {
            MessagePackType.Integer => reader.ReadInt64().ToString(System.Globalization.CultureInfo.InvariantCulture),
            MessagePackType.Boolean => reader.ReadBoolean() ? "true" : "false",
            _ => throw new MessagePackSerializationException("unsupported map key"),
        };
    }
}
