using System.Text.Json;
using EngineIO;
using SocketIO.Parser;
using static SocketIO.Tests.Parser.ParserTestSupport;

namespace SocketIO.Tests.Parser;

/// <summary>The encodings listed in the Socket.IO v5 protocol document, in both directions.</summary>
public class JsonPacketParserSpecTests
{
    private readonly JsonPacketParser _parser = new();

    public static TheoryData<string> TextPackets() => new()
    {
        "0",
        "0/admin,",
        "0/admin,{\"token\":\"123\"}",
        "0/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}",
        "1",
        "1/admin,",
        "2[\"foo\"]",
        "2[\"hello\",1]",
        "2/admin,[\"bar\"]",
        "212[\"foo\"]",
        "2/admin,456[\"project:delete\",123]",
        "2[42,\"numeric event name\"]",
        "3/admin,456[]",
        "3/admin,13[\"bar\"]",
        "312[\"foo\",{\"a\":[1,2,null,true]}]",
        "4{\"message\":\"Not authorized\"}",
        "4/admin,{\"message\":\"Not authorized\",\"data\":{\"code\":42}}",
        "4\"plain string error\"",
    };

    [Fact]
    public void Encode_connect_main_namespace()
    {
        var encoded = _parser.Encode(SocketPacketType.Connect, "/", null, null);
        var message = Assert.Single(encoded.Messages);
        Assert.False(message.IsBinary);
        Assert.Equal("40", FrameText(message));
        Assert.Equal("0", DataText(message));
    }

    [Fact]
    public void Encode_connect_custom_namespace_with_payload()
    {
        var data = new Dictionary<string, string> { ["sid"] = "oSO0OpakMV_3jnilAAAA" };
        var encoded = _parser.Encode(SocketPacketType.Connect, "/admin", null, data);
        Assert.Equal("40/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}", FrameText(Assert.Single(encoded.Messages)));
    }

    [Fact]
    public void Encode_connect_token_payload()
    {
        var encoded = _parser.Encode(SocketPacketType.Connect, "/admin", null, new Dictionary<string, string> { ["token"] = "123" });
        Assert.Equal("40/admin,{\"token\":\"123\"}", FrameText(Assert.Single(encoded.Messages)));
    }

    [Fact]
    public void Encode_connect_error()
    {
        var encoded = _parser.Encode(SocketPacketType.ConnectError, "/", null, new Dictionary<string, string> { ["message"] = "Not authorized" });
        Assert.Equal("44{\"message\":\"Not authorized\"}", FrameText(Assert.Single(encoded.Messages)));
    }

    [Fact]
    public void Encode_disconnect()
    {
        Assert.Equal("41", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Disconnect, "/", null, null).Messages)));
        Assert.Equal("41/admin,", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Disconnect, "/admin", null, null).Messages)));
    }

    [Fact]
    public void Encode_events()
    {
        Assert.Equal("42[\"foo\"]", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "foo" }).Messages)));
        Assert.Equal("42[\"hello\",1]", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "hello", 1 }).Messages)));
        Assert.Equal("42/admin,[\"bar\"]", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Event, "/admin", null, new object?[] { "bar" }).Messages)));
        Assert.Equal("4212[\"foo\"]", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Event, "/", 12, new object?[] { "foo" }).Messages)));
        Assert.Equal(
            "42/admin,456[\"project:delete\",123]",
            FrameText(Assert.Single(_parser.Encode(SocketPacketType.Event, "/admin", 456, new object?[] { "project:delete", 123 }).Messages)));
    }

    [Fact]
    public void Encode_acks()
    {
        Assert.Equal("43/admin,456[]", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Ack, "/admin", 456, Array.Empty<object?>()).Messages)));
        Assert.Equal("43/admin,13[\"bar\"]", FrameText(Assert.Single(_parser.Encode(SocketPacketType.Ack, "/admin", 13, new object?[] { "bar" }).Messages)));
    }

    [Fact]
    public void Encode_binary_event_single_attachment()
    {
        var buffer = new byte[] { 1, 2, 3, 4 };
        var encoded = _parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "baz", buffer });
        Assert.Equal(2, encoded.Messages.Length);
        Assert.Equal("451-[\"baz\",{\"_placeholder\":true,\"num\":0}]", FrameText(encoded.Messages[0]));
        Assert.False(encoded.Messages[0].IsBinary);
        Assert.True(encoded.Messages[1].IsBinary);
        Assert.Equal(buffer, encoded.Messages[1].Frame.ToArray());
        Assert.Equal(buffer, encoded.Messages[1].Data.ToArray());
    }

    [Fact]
    public void Encode_binary_event_multiple_attachments()
    {
        var encoded = _parser.Encode(SocketPacketType.Event, "/admin", null, new object?[] { "baz", new byte[] { 1, 2 }, new byte[] { 3, 4 } });
        Assert.Equal(3, encoded.Messages.Length);
        Assert.Equal(
            "452-/admin,[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]",
            FrameText(encoded.Messages[0]));
        Assert.Equal(new byte[] { 1, 2 }, encoded.Messages[1].Data.ToArray());
        Assert.Equal(new byte[] { 3, 4 }, encoded.Messages[2].Data.ToArray());
    }

    [Fact]
    public void Encode_binary_ack()
    {
        var encoded = _parser.Encode(SocketPacketType.Ack, "/", 15, new object?[] { "bar", new byte[] { 1, 2, 3, 4 } });
        Assert.Equal("461-15[\"bar\",{\"_placeholder\":true,\"num\":0}]", FrameText(encoded.Messages[0]));

        encoded = _parser.Encode(SocketPacketType.Ack, "/admin", 456, new object?[] { new byte[] { 9 } });
        Assert.Equal("461-/admin,456[{\"_placeholder\":true,\"num\":0}]", FrameText(encoded.Messages[0]));
        Assert.Equal(new byte[] { 9 }, encoded.Messages[1].Data.ToArray());
    }

    [Fact]
    public void Encode_binary_memory_types_become_attachments()
    {
        var bytes = new byte[] { 5, 6, 7 };
        var encoded = _parser.Encode(
            SocketPacketType.Event,
            "/",
            null,
            new object?[] { "types", new ReadOnlyMemory<byte>(bytes), new Memory<byte>(bytes), new ArraySegment<byte>(bytes, 1, 2) });
        Assert.Equal(4, encoded.Messages.Length);
        Assert.StartsWith("453-[\"types\",", FrameText(encoded.Messages[0]), StringComparison.Ordinal);
        Assert.Equal(bytes, encoded.Messages[1].Data.ToArray());
        Assert.Equal(bytes, encoded.Messages[2].Data.ToArray());
        Assert.Equal(new byte[] { 6, 7 }, encoded.Messages[3].Data.ToArray());
    }

    [Fact]
    public void Encode_binary_in_connect_error_is_base64_not_attachment()
    {
        var encoded = _parser.Encode(SocketPacketType.ConnectError, "/", null, new Dictionary<string, object?> { ["message"] = "x", ["data"] = new byte[] { 1, 2, 3 } });
        Assert.Equal("44{\"message\":\"x\",\"data\":\"AQID\"}", FrameText(Assert.Single(encoded.Messages)));
    }

    [Fact]
    public void Encode_volatile_flag_applies_to_every_message()
    {
        var encoded = _parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "v", new byte[] { 1 } }, isVolatile: true);
        Assert.All(encoded.Messages, m => Assert.True(m.IsVolatile));
        encoded = _parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "v", new byte[] { 1 } });
        Assert.All(encoded.Messages, m => Assert.False(m.IsVolatile));
    }

    [Fact]
    public void Encode_rejects_null_namespace() =>
        Assert.Throws<ArgumentNullException>(() => _parser.Encode(SocketPacketType.Event, null!, null, new object?[] { "x" }));

    [Fact]
    public void Decode_connect_main_namespace()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("0", out var packet, out var error));
        Assert.Null(error);
        Assert.Equal(SocketPacketType.Connect, packet!.Type);
        Assert.Equal("/", packet.Namespace);
        Assert.Null(packet.Id);
        Assert.Null(packet.Data);
        Assert.Empty(packet.Attachments);
    }

    [Fact]
    public void Decode_connect_with_auth()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("0/admin,{\"token\":\"123\"}", out var packet, out _));
        Assert.Equal(SocketPacketType.Connect, packet!.Type);
        Assert.Equal("/admin", packet.Namespace);
        Assert.Equal("123", packet.Data!.Value.GetProperty("token").GetString());
    }

    [Fact]
    public void Decode_disconnect_custom_namespace()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("1/admin,", out var packet, out _));
        Assert.Equal(SocketPacketType.Disconnect, packet!.Type);
        Assert.Equal("/admin", packet.Namespace);
        Assert.Null(packet.Data);
    }

    [Fact]
    public void Decode_namespace_without_trailing_comma()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("1/admin", out var packet, out _));
        Assert.Equal("/admin", packet!.Namespace);
        Assert.Equal(DecodeStatus.Complete, DecodeText("0/admin", out packet, out _));
        Assert.Equal(SocketPacketType.Connect, packet!.Type);
        Assert.Equal("/admin", packet.Namespace);
    }

    [Fact]
    public void Decode_event()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("2[\"hello\",1]", out var packet, out _));
        Assert.Equal(SocketPacketType.Event, packet!.Type);
        Assert.Equal("/", packet.Namespace);
        Assert.Null(packet.Id);
        AssertTree(new object?[] { "hello", 1L }, packet.Data!.Value, packet.Attachments);
    }

    [Fact]
    public void Decode_event_with_namespace_and_ack_id()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("2/admin,456[\"project:delete\",123]", out var packet, out _));
        Assert.Equal(SocketPacketType.Event, packet!.Type);
        Assert.Equal("/admin", packet.Namespace);
        Assert.Equal(456, packet.Id);
        AssertTree(new object?[] { "project:delete", 123L }, packet.Data!.Value, packet.Attachments);
    }

    [Fact]
    public void Decode_event_with_ack_id_main_namespace()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("212[\"foo\"]", out var packet, out _));
        Assert.Equal(12, packet!.Id);
        Assert.Equal("/", packet.Namespace);
    }

    [Fact]
    public void Decode_largest_allowed_ack_id()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("3999999999999999[]", out var packet, out _));
        Assert.Equal(999_999_999_999_999, packet!.Id);
    }

    [Fact]
    public void Decode_ack()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("3/admin,456[]", out var packet, out _));
        Assert.Equal(SocketPacketType.Ack, packet!.Type);
        Assert.Equal("/admin", packet.Namespace);
        Assert.Equal(456, packet.Id);
        Assert.Equal(0, packet.Data!.Value.GetArrayLength());
    }

    [Fact]
    public void Decode_connect_error_object_and_string()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("4{\"message\":\"Not authorized\"}", out var packet, out _));
        Assert.Equal(SocketPacketType.ConnectError, packet!.Type);
        Assert.Equal("Not authorized", packet.Data!.Value.GetProperty("message").GetString());

        Assert.Equal(DecodeStatus.Complete, DecodeText("4\"Not authorized\"", out packet, out _));
        Assert.Equal("Not authorized", packet!.Data!.Value.GetString());
    }

    [Fact]
    public void Decode_binary_event()
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text("51-[\"hello\",{\"_placeholder\":true,\"num\":0}]"), out var packet, out var error));
        Assert.Null(packet);
        Assert.Null(error);
        Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Binary(new byte[] { 1, 2, 3, 4 }), out packet, out error));
        Assert.Null(error);
        Assert.Equal(SocketPacketType.BinaryEvent, packet!.Type);
        Assert.Equal("/", packet.Namespace);
        AssertTree(new object?[] { "hello", new byte[] { 1, 2, 3, 4 } }, packet.Data!.Value, packet.Attachments);
    }

    [Fact]
    public void Decode_binary_event_multiple_attachments_in_order()
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(
            DecodeStatus.NeedMore,
            decoder.Decode(EngineMessage.Text("52-/admin,[\"baz\",{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]"), out _, out _));
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Binary(new byte[] { 1, 2 }), out var packet, out _));
        Assert.Null(packet);
        Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Binary(new byte[] { 3, 4 }), out packet, out _));
        Assert.Equal("/admin", packet!.Namespace);
        Assert.Equal(2, packet.Attachments.Count);
        AssertTree(new object?[] { "baz", new byte[] { 3, 4 }, new byte[] { 1, 2 } }, packet.Data!.Value, packet.Attachments);
    }

    [Fact]
    public void Decode_binary_ack()
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text("61-/admin,456[{\"_placeholder\":true,\"num\":0}]"), out _, out _));
        Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Binary(new byte[] { 0xff, 0x00 }), out var packet, out _));
        Assert.Equal(SocketPacketType.BinaryAck, packet!.Type);
        Assert.Equal("/admin", packet.Namespace);
        Assert.Equal(456, packet.Id);
        AssertTree(new object?[] { new byte[] { 0xff, 0x00 } }, packet.Data!.Value, packet.Attachments);

        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]"), out _, out _));
        Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Binary(new byte[] { 1, 2, 3, 4 }), out packet, out _));
        Assert.Equal(15, packet!.Id);
        Assert.Equal("/", packet.Namespace);
    }

    [Fact]
    public void Decode_binary_event_with_zero_attachments_completes_at_once()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("50-[\"hello\"]", out var packet, out _));
        Assert.Equal(SocketPacketType.BinaryEvent, packet!.Type);
        Assert.Empty(packet.Attachments);
    }

    [Fact]
    public void Decoder_is_reusable_across_packets()
    {
        var decoder = _parser.CreateDecoder();
        for (var round = 0; round < 3; round++)
        {
            Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Text("2[\"a\"]"), out _, out _));
            Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text("51-[\"b\",{\"_placeholder\":true,\"num\":0}]"), out _, out _));
            Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Binary(new byte[] { (byte)round }), out var packet, out _));
            Assert.Equal(new[] { (byte)round }, packet!.Attachments[0].ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(TextPackets))]
    public void Text_packets_decode_then_reencode_identically(string text)
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText(text, out var packet, out var error));
        Assert.Null(error);
        object? data = packet!.Data;
        var encoded = _parser.Encode(packet.Type, packet.Namespace, packet.Id, data);
        var reencoded = DataText(Assert.Single(encoded.Messages));
        Assert.Equal(text, reencoded);
    }

    [Fact]
    public void Binary_packet_decode_then_reencode_with_attachments()
    {
        var packet = DecodeAll(
            _parser,
            [EngineMessage.Text("52-/admin,9[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"), EngineMessage.Binary(new byte[] { 1 }), EngineMessage.Binary(new byte[] { 2 })]);
        var args = new object?[] { "baz", packet.Attachments[0].ToArray(), packet.Attachments[1].ToArray() };
        var encoded = _parser.Encode(SocketPacketType.Event, packet.Namespace, packet.Id, args);
        Assert.Equal("452-/admin,9[\"baz\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", FrameText(encoded.Messages[0]));
    }

    [Fact]
    public void Decoded_data_outlives_the_input_buffer()
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes("2[\"hello\",{\"x\":1}]");
        Assert.Equal(DecodeStatus.Complete, _parser.CreateDecoder().Decode(EngineMessage.Text(bytes), out var packet, out _));
        Array.Clear(bytes);
        Assert.Equal("hello", packet!.Data!.Value[0].GetString());
        Assert.Equal(1, packet.Data.Value[1].GetProperty("x").GetInt32());
    }

    [Fact]
    public void Custom_serializer_options_are_honoured()
    {
        var parser = new JsonPacketParser(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
        var encoded = parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "e", new SamplePayload("x", 1) });
        Assert.Equal("42[\"e\",{\"agent_id\":\"x\",\"progress_value\":1}]", FrameText(encoded.Messages[0]));
        Assert.Equal(10, parser.MaxAttachments);
        Assert.True(parser.SerializerOptions.IsReadOnly);
    }

    [Fact]
    public void Default_options_use_web_camel_case()
    {
        var encoded = _parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "e", new SamplePayload("x", 1) });
        Assert.Equal("42[\"e\",{\"agentId\":\"x\",\"progressValue\":1}]", FrameText(encoded.Messages[0]));
    }

    private sealed record SamplePayload(string AgentId, int ProgressValue);
}
