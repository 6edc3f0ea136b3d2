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
