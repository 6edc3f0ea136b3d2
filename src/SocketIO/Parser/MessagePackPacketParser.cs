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

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_json; // this thread's JSON text of the arguments being encoded

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_decodeJson; // this thread's JSON text of a packet being decoded

    [ThreadStatic]
    private static Utf8JsonWriter? t_decodeWriter;

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

        var writer = MessagePackPacketWriter.Rent();
        try
        {
            writer.WriteMapHeader(2 + (data is null ? 0 : 1) + (id is null ? 0 : 1));
            writer.Write("type");
            writer.Write((long)type);
            writer.Write("nsp");
            writer.Write(nsp);
            if (data is not null)
            {
                writer.Write("data");
                WriteData(writer, data);
            }

            if (id is { } ackId)
            {
                writer.Write("id");
                writer.Write(ackId);
            }

            return new EncodedPacket([EngineMessage.Binary(writer.ToArray(), isVolatile)]);
        }
        finally
        {
            MessagePackPacketWriter.Return(writer);
        }
    }

    /// <inheritdoc/>
    public IPacketDecoder CreateDecoder() => Decoder.Instance;

    /// <summary>The arguments serialized to JSON (binary values as placeholders), then transcoded to MessagePack with the binary values in place.</summary>
    private void WriteData(MessagePackPacketWriter writer, object data)
    {
        var json = t_json ?? new ArrayBufferWriter<byte>(1024);
        t_json = null;
        var attachments = new List<ReadOnlyMemory<byte>>();
        try
        {
            json.ResetWrittenCount();
            using (var jsonWriter = new Utf8JsonWriter(json, new JsonWriterOptions { Encoder = SerializerOptions.Encoder, MaxDepth = SerializerOptions.MaxDepth }))
            {
                BinaryScope.Writing = attachments;
                try
                {
                    JsonSerializer.Serialize(jsonWriter, data, data.GetType(), SerializerOptions);
                }
                finally
                {
                    BinaryScope.Writing = null;
                }
            }

            writer.WriteJson(json.WrittenSpan, attachments, Math.Max(SerializerOptions.MaxDepth, MaxDepth) + 1);
        }
        finally
        {
            if (json.Capacity <= 64 * 1024)
            {
                t_json = json;
            }
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
            catch (OverflowException)
            {
                // a packet type or ack id past the 64-bit signed range
                error = "invalid packet: number out of range";
            }
            catch (Exception e) when (e is InvalidOperationException or ArgumentException)
            {
                // a string that is not valid UTF-8 text
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
                        data = ReadData(ref reader, attachments);
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

        /// <summary>The packet's data as a <see cref="JsonElement"/>, written as JSON by this thread's reused writer, then parsed into an element of its own.</summary>
        private static JsonElement ReadData(ref MessagePackReader reader, List<ReadOnlyMemory<byte>> attachments)
        {
            var json = t_decodeJson ?? new ArrayBufferWriter<byte>(1024);
            var writer = t_decodeWriter;
            t_decodeJson = null;
            t_decodeWriter = null;
            try
            {
                json.ResetWrittenCount();
                if (writer is null)
                {
                    writer = new Utf8JsonWriter(json);
                }
                else
                {
                    writer.Reset(json);
                }

                ReadValue(ref reader, writer, attachments, 0);
                writer.Flush();
                var text = new Utf8JsonReader(json.WrittenSpan);
                return JsonElement.ParseValue(ref text);
            }
            finally
            {
                if (json.Capacity <= 64 * 1024)
                {
                    writer!.Reset();
                    t_decodeJson = json;
                    t_decodeWriter = writer;
                }
            }
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
                    if (reader.TryReadStringSpan(out var utf8))
                    {
                        writer.WriteStringValue(utf8);
                    }
                    else
                    {
                        writer.WriteStringValue(reader.ReadString());
                    }

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
                        if (reader.NextMessagePackType != MessagePackType.String)
                        {
                            writer.WritePropertyName(KeyText(ref reader));
                        }
                        else if (reader.TryReadStringSpan(out var name))
                        {
                            writer.WritePropertyName(name);
                        }
                        else
                        {
                            writer.WritePropertyName(reader.ReadString() ?? "null");
                        }

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
