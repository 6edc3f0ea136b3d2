using System.Text;
using System.Text.Json;
using EngineIO;
using SocketIO.Parser;

namespace SocketIO.Tests.Parser;

/// <summary>
/// <see cref="MessagePackPacketParser"/> against bytes laid out as npm's socket.io-msgpack-parser
/// 3.x (notepack.io) writes them, and the refusals of its Decoder.checkPacket.
/// </summary>
public sealed class MessagePackPacketParserTests
{
    private static readonly MessagePackPacketParser Parser = new();

    private static byte[] Str(string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        return [(byte)(0xa0 | utf8.Length), .. utf8];
    }

    private static DecodeStatus Decode(byte[] bytes, out SocketPacket? packet, out string? error) =>
        Parser.CreateDecoder().Decode(EngineMessage.Binary(bytes), out packet, out error);

    [Fact]
    public void Decodes_a_connect_packet_as_the_client_sends_it()
    {
        // {type: 0, nsp: "/"}
        byte[] bytes = [0x82, .. Str("type"), 0x00, .. Str("nsp"), .. Str("/")];
        Assert.Equal(DecodeStatus.Complete, Decode(bytes, out var packet, out var error));
        Assert.Null(error);
        Assert.Equal(SocketPacketType.Connect, packet!.Type);
        Assert.Equal("/", packet.Namespace);
        Assert.Null(packet.Data);
    }

    [Fact]
    public void Refuses_a_type_or_ack_id_past_the_signed_64_bit_range()
    {
        // {type: 2^64-1, nsp: "/"} and {type: 2, nsp: "/", data: ["e"], id: 2^64-1} (uint64)
        byte[] type = [0x82, .. Str("type"), 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, .. Str("nsp"), .. Str("/")];
        Assert.Equal(DecodeStatus.Error, Decode(type, out var packet, out var error));
        Assert.Null(packet);
        Assert.Equal("invalid packet: number out of range", error);
        byte[] id = [0x84, .. Str("type"), 0x02, .. Str("nsp"), .. Str("/"), .. Str("data"), 0x91, .. Str("e"), .. Str("id"), 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        Assert.Equal(DecodeStatus.Error, Decode(id, out packet, out error));
        Assert.Equal("invalid packet: number out of range", error);
    }

    [Fact]
    public void Reads_notepacks_undefined_as_an_absent_field_or_null()
    {
        // {type: 0, nsp: "/", data: undefined}, as socket.io-client sends a CONNECT without auth
        byte[] connect = [0x83, .. Str("type"), 0x00, .. Str("nsp"), .. Str("/"), .. Str("data"), 0xd4, 0x00, 0x00];
        Assert.Equal(DecodeStatus.Complete, Decode(connect, out var packet, out var error));
        Assert.Null(error);
        Assert.Null(packet!.Data);

        // ["e", undefined] -> ["e", null], as JSON.stringify
        byte[] evt = [0x83, .. Str("type"), 0x02, .. Str("data"), 0x92, .. Str("e"), 0xd4, 0x00, 0x00, .. Str("nsp"), .. Str("/")];
        Assert.Equal(DecodeStatus.Complete, Decode(evt, out packet, out error));
        Assert.Equal(JsonValueKind.Null, packet!.Data!.Value[1].ValueKind);
    }

    [Fact]
    public void Decodes_an_event_with_an_ack_id_and_binary_in_place()
    {
        // {type: 2, data: ["hello", 1, 2.5, Buffer<01 02>, {a: null}], nsp: "/chat", id: 7}
        byte[] bytes =
        [
            0x84, .. Str("type"), 0x02,
            .. Str("data"), 0x95, .. Str("hello"), 0x01, 0xcb, .. BitConverter.GetBytes(2.5).Reverse(), 0xc4, 0x02, 0x01, 0x02, 0x81, .. Str("a"), 0xc0,
            .. Str("nsp"), .. Str("/chat"),
            .. Str("id"), 0x07,
        ];
        Assert.Equal(DecodeStatus.Complete, Decode(bytes, out var packet, out var error));
        Assert.Null(error);
        Assert.Equal(SocketPacketType.BinaryEvent, packet!.Type);
        Assert.Equal("/chat", packet.Namespace);
        Assert.Equal(7, packet.Id);
        var data = packet.Data!.Value;
        Assert.Equal("hello", data[0].GetString());
        Assert.Equal(1, data[1].GetInt32());
        Assert.Equal(2.5, data[2].GetDouble());
        Assert.Equal(JsonValueKind.Null, data[4].GetProperty("a").ValueKind);
        var attachment = Assert.Single(packet.Attachments);
        Assert.Equal(new byte[] { 1, 2 }, attachment.ToArray());
        Assert.True(data[3].GetProperty("_placeholder").GetBoolean());
        Assert.Equal(0, data[3].GetProperty("num").GetInt32());
    }

    [Fact]
    public void Encodes_an_event_as_one_binary_message_with_binary_in_place()
    {
        var encoded = Parser.Encode(SocketPacketType.Event, "/", 3, new object?[] { "file", new byte[] { 9, 8 }, new { n = 1, s = "é" } });
        var message = Assert.Single(encoded.Messages);
        Assert.True(message.IsBinary);

        // what the client's decoder sees, read back with the server's decoder
        Assert.Equal(DecodeStatus.Complete, Parser.CreateDecoder().Decode(message, out var packet, out var error));
        Assert.Null(error);
        Assert.Equal(SocketPacketType.BinaryEvent, packet!.Type);
        Assert.Equal(3, packet.Id);
        Assert.Equal("file", packet.Data!.Value[0].GetString());
        Assert.Equal(new byte[] { 9, 8 }, packet.Attachments[0].ToArray());
        Assert.Equal(1, packet.Data.Value[2].GetProperty("n").GetInt32());
        Assert.Equal("é", packet.Data.Value[2].GetProperty("s").GetString());

        // the bytes: a map of type, nsp, data, id; the bin value in place (c4 02 09 08)
        var bytes = message.Data.ToArray();
        Assert.Equal(0x84, bytes[0]);
        Assert.Contains("c40209", Convert.ToHexStringLower(bytes), StringComparison.Ordinal);
    }

    [Fact]
    public void Encodes_connect_disconnect_and_connect_error_packets()
    {
        var connect = Parser.Encode(SocketPacketType.Connect, "/admin", null, new { sid = "abc" });
        Assert.Equal(DecodeStatus.Complete, Parser.CreateDecoder().Decode(connect.Messages[0], out var packet, out _));
        Assert.Equal(SocketPacketType.Connect, packet!.Type);
        Assert.Equal("abc", packet.Data!.Value.GetProperty("sid").GetString());

        var disconnect = Parser.Encode(SocketPacketType.Disconnect, "/admin", null, null);
        Assert.Equal(DecodeStatus.Complete, Parser.CreateDecoder().Decode(disconnect.Messages[0], out packet, out _));
        Assert.Equal(SocketPacketType.Disconnect, packet!.Type);
        Assert.Null(packet.Data);

        var error = Parser.Encode(SocketPacketType.ConnectError, "/", null, new { message = "no" });
        Assert.Equal(DecodeStatus.Complete, Parser.CreateDecoder().Decode(error.Messages[0], out packet, out _));
        Assert.Equal("no", packet!.Data!.Value.GetProperty("message").GetString());
    }

    public static TheoryData<string, byte[], string> Malformed() => new()
    {
        { "not a map", [0x92, 0x00, 0x00], "invalid packet: not a map" },
        { "binary packet type 5", [0x82, .. Str("type"), 0x05, .. Str("nsp"), .. Str("/")], "invalid packet type" },
        { "type as a string", [0x82, .. Str("type"), .. Str("2"), .. Str("nsp"), .. Str("/")], "invalid packet type" },
        { "no namespace", [0x81, .. Str("type"), 0x00], "invalid namespace" },
        { "namespace as a number", [0x82, .. Str("type"), 0x00, .. Str("nsp"), 0x01], "invalid namespace" },
        { "id as a string", [0x84, .. Str("type"), 0x02, .. Str("data"), 0x91, .. Str("e"), .. Str("nsp"), .. Str("/"), .. Str("id"), .. Str("1")], "invalid packet id" },
        { "event without a name", [0x83, .. Str("type"), 0x02, .. Str("data"), 0x90, .. Str("nsp"), .. Str("/")], "invalid payload" },
        { "reserved event name", [0x83, .. Str("type"), 0x02, .. Str("data"), 0x91, .. Str("connect"), .. Str("nsp"), .. Str("/")], "invalid payload" },
        { "disconnect with data", [0x83, .. Str("type"), 0x01, .. Str("data"), 0x01, .. Str("nsp"), .. Str("/")], "invalid payload" },
        { "trailing bytes", [0x82, .. Str("type"), 0x00, .. Str("nsp"), .. Str("/"), 0x00], "invalid packet: trailing bytes" },
        { "truncated", [0x82, .. Str("type"), 0x00, .. Str("nsp")], "truncated MessagePack" },
        { "an extension type", [0x83, .. Str("type"), 0x02, .. Str("data"), 0x92, .. Str("e"), 0xd4, 0x01, 0x00, .. Str("nsp"), .. Str("/")], "invalid MessagePack" },
        { "nested 100 deep", [0x83, .. Str("type"), 0x02, .. Str("data"), 0x92, .. Str("e"), .. Enumerable.Repeat((byte)0x91, 100), 0x00, .. Str("nsp"), .. Str("/")], "invalid MessagePack" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Refuses_malformed_packets_with_a_reason(string what, byte[] bytes, string reason)
    {
        Assert.True(Decode(bytes, out var packet, out var error) == DecodeStatus.Error, what);
        Assert.Null(packet);
        Assert.Equal(reason, error);
    }

    [Fact]
    public void Refuses_a_text_message()
    {
        Assert.Equal(DecodeStatus.Error, Parser.CreateDecoder().Decode(EngineMessage.Text("0"), out _, out var error));
        Assert.Equal("expected a binary MessagePack packet", error);
    }
}

/// <summary>
/// The encoder transcodes the arguments' JSON to MessagePack token by token; its bytes must be
/// those of MessagePack-CSharp's writer given the same values with their sizes known (the
/// reference below walks a <see cref="JsonDocument"/>, as the encoder did before).
/// </summary>
public sealed class MessagePackEncoderEquivalenceTests
{
    private static readonly MessagePackPacketParser Parser = new();

    private static byte[] Reference(string nsp, long? id, object?[] args, IReadOnlyList<byte[]> binaries)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePack.MessagePackWriter(buffer);
        writer.WriteMapHeader(3 + (id is null ? 0 : 1));
        writer.Write("type");
        writer.Write((int)SocketPacketType.Event);
        writer.Write("nsp");
        writer.Write(nsp);
        writer.Write("data");
        using (var doc = JsonSerializer.SerializeToDocument(args, Parser.SerializerOptions))
        {
            WriteValue(ref writer, doc.RootElement, binaries);
        }

        if (id is { } ackId)
        {
            writer.Write("id");
            writer.Write(ackId);
        }

        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteValue(ref MessagePack.MessagePackWriter writer, JsonElement element, IReadOnlyList<byte[]> binaries)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteMapHeader(element.GetPropertyCount());
                foreach (var property in element.EnumerateObject())
                {
                    writer.Write(property.Name);
                    WriteValue(ref writer, property.Value, binaries);
                }

                return;
            case JsonValueKind.Array:
                writer.WriteArrayHeader(element.GetArrayLength());
                foreach (var item in element.EnumerateArray())
                {
                    WriteValue(ref writer, item, binaries);
                }

                return;
            case JsonValueKind.String when element.GetString() is { } s && s.StartsWith("\u0001bin:", StringComparison.Ordinal):
                writer.Write(binaries[int.Parse(s[5..], System.Globalization.CultureInfo.InvariantCulture)]);
                return;
            case JsonValueKind.String:
                writer.Write(element.GetString());
                return;
            case JsonValueKind.Number when element.TryGetInt64(out var l):
                writer.Write(l);
                return;
            case JsonValueKind.Number when element.TryGetUInt64(out var u):
                writer.Write(u);
                return;
            case JsonValueKind.Number:
                writer.Write(element.GetDouble());
                return;
            case JsonValueKind.True or JsonValueKind.False:
                writer.Write(element.GetBoolean());
                return;
            default:
                writer.WriteNil();
                return;
        }
    }

    /// <summary>A random argument tree; a binary value stands in the reference tree as a marker string naming it.</summary>
    private static (object? Value, object? Marked) Value(Random random, int depth, List<byte[]> binaries)
    {
        switch (random.Next(depth > 4 ? 7 : 10))
        {
            case 0:
                return (null, null);
            case 1:
                var b = random.Next(2) == 0;
                return (b, b);
            case 2:
                long[] edges = [0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, uint.MaxValue, (long)uint.MaxValue + 1, long.MaxValue, -1, -32, -33, -128, -129, -32768, -32769, int.MinValue, (long)int.MinValue - 1, long.MinValue];
                var n = random.Next(3) == 0 ? random.NextInt64(long.MinValue, long.MaxValue) : edges[random.Next(edges.Length)];
                return (n, n);
            case 3:
                var d = random.Next(4) switch { 0 => 0.5, 1 => -1e300, 2 => random.NextDouble() * 1e6, _ => double.Epsilon };
                return (d, d);
            case 4:
                ulong big = ulong.MaxValue - (ulong)random.Next(1000);
                return (big, big);
            case 5:
                string[] texts = ["", "a", "quote \" and \\ backslash", "tab\tnew\nline\u0001", "é ü 漢字 😀", "</script>&'", new string('x', 31), new string('y', 32), new string('z', 255), new string('w', 256), new string('v', 70_000)];
                var t = texts[random.Next(texts.Length)];
                return (t, t);
            case 6:
                var bytes = new byte[random.Next(3) switch { 0 => 3, 1 => 300, _ => 70_000 }];
                random.NextBytes(bytes);
                binaries.Add(bytes);
                return (bytes, "\u0001bin:" + (binaries.Count - 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
            case 7 or 8:
                var count = random.Next(4) == 0 ? random.Next(14, 40) : random.Next(0, 5);
                var list = new List<object?>();
                var marked = new List<object?>();
                for (var i = 0; i < count; i++)
                {
                    var (v, m) = Value(random, depth + 1, binaries);
                    list.Add(v);
                    marked.Add(m);
                }

                return (list, marked);
            default:
                var fields = random.Next(4) == 0 ? random.Next(14, 40) : random.Next(0, 5);
                var map = new Dictionary<string, object?>();
                var markedMap = new Dictionary<string, object?>();
                for (var i = 0; i < fields; i++)
                {
                    var key = i % 7 == 3 ? "kéy \"" + i : "k" + i;
                    var (v, m) = Value(random, depth + 1, binaries);
                    map[key] = v;
                    markedMap[key] = m;
                }

                return (map, markedMap);
        }
    }

    [Fact]
    public void Random_argument_trees_encode_to_the_bytes_of_a_writer_that_knew_the_sizes()
    {
        var random = new Random(20261207);
        for (var round = 0; round < 300; round++)
        {
            var binaries = new List<byte[]>();
            var (value, marked) = Value(random, 0, binaries);
            var id = round % 3 == 0 ? (long?)round : null;
            var encoded = Parser.Encode(SocketPacketType.Event, "/builder", id, new object?[] { "e", value });
            var expected = Reference("/builder", id, ["e", marked], binaries);
            var actual = Assert.Single(encoded.Messages).Data.ToArray();
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"round {round}: {Convert.ToHexString(actual.AsSpan(0, Math.Min(64, actual.Length)))} != {Convert.ToHexString(expected.AsSpan(0, Math.Min(64, expected.Length)))}");
        }
    }

    [Fact]
    public void Containers_past_65535_entries_get_32_bit_headers()
    {
        var large = Enumerable.Range(0, 70_000).ToArray();
        var encoded = Assert.Single(Parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "e", large }).Messages).Data.ToArray();
        Assert.Equal(Reference("/", null, ["e", large], []), encoded);
        Assert.Equal(DecodeStatus.Complete, Parser.CreateDecoder().Decode(EngineMessage.Binary(encoded), out var packet, out _));
        Assert.Equal(69_999, packet!.Data!.Value[1][69_999].GetInt32());
    }

    [Fact]
    public void Mutated_packets_decode_or_are_refused_and_never_throw()
    {
        var random = new Random(7);
        var decoder = Parser.CreateDecoder();
        var binaries = new List<byte[]>();
        byte[][] seeds =
        [
            .. Enumerable.Range(0, 20).Select(_ => Assert.Single(Parser.Encode(SocketPacketType.Event, "/builder", 3, new object?[] { "e", Value(random, 2, binaries).Value }).Messages).Data.ToArray()),
        ];
        var decoded = 0;
        for (var round = 0; round < 20_000; round++)
        {
            var bytes = (byte[])seeds[random.Next(seeds.Length)].Clone();
            var cut = random.Next(4) == 0 ? random.Next(1, bytes.Length + 1) : bytes.Length;
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                bytes[random.Next(cut)] = (byte)random.Next(256);
            }

            var status = decoder.Decode(EngineMessage.Binary(bytes.AsMemory(0, cut)), out var packet, out var error);
            Assert.True(status == DecodeStatus.Complete ? packet is not null && error is null : packet is null && error is not null, $"round {round}: {status} {error}");
            decoded += status == DecodeStatus.Complete ? 1 : 0;
        }

        Assert.InRange(decoded, 1, 19_999); // both outcomes were exercised
    }
}
