using System.Text;
using EngineIO;
using SocketIO.Parser;
using static SocketIO.Tests.Parser.ParserTestSupport;

namespace SocketIO.Tests.Parser;

/// <summary>Malformed input must yield <see cref="DecodeStatus.Error"/> with a reason, never an exception.</summary>
public class JsonPacketParserMalformedTests
{
    private const string Placeholder0 = "{\"_placeholder\":true,\"num\":0}";

    private readonly JsonPacketParser _parser = new();

    public static TheoryData<string> MalformedText() => new()
    {
        // empty and unknown packet types
        "",
        "7",
        "7[\"a\"]",
        "8",
        "9[]",
        "abc",
        "a2[\"a\"]",
        " 2[\"a\"]",
        "-1",
        "/",
        "[\"a\"]",
        "{}",

        // EVENT payloads
        "2{}",
        "2abc[\"a\"]",
        "2abc",
        "2[]",
        "2",
        "2/admin,",
        "2\"hello\"",
        "2null",
        "2true",
        "21",
        "2[null]",
        "2[true]",
        "2[{}]",
        "2[[\"a\"]]",
        "2[\"connect\"]",
        "2[\"connect_error\"]",
        "2[\"disconnect\"]",
        "2[\"disconnecting\"]",
        "2[\"newListener\"]",
        "2[\"removeListener\"]",
        "2[\"con\\u006eect\"]",
        "2/admin,1[\"disconnect\",1]",

        // DISCONNECT with payload
        "1{}",
        "1[]",
        "1\"bye\"",
        "1/admin,{}",
        "1null",

        // CONNECT with a non-object payload
        "0[]",
        "0\"token\"",
        "0null",
        "0/admin,[1]",
        "0/admin,\"x\"",
        "0/admin,4true",

        // ACK without an array
        "3",
        "3/admin,456",
        "3{}",
        "31\"x\"",
        "3/admin,1null",

        // CONNECT_ERROR needs an object or a string
        "4",
        "4[]",
        "442",
        "4null",

        // attachment counts
        "5-[\"a\"]",
        "5x-[\"a\"]",
        "5-1-[\"a\"]",
        "5[\"a\"]",
        "51[\"a\"]",
        "51",
        "5",
        "51-",
        "51-/admin,",
        "511-[\"a\"]",
        "599-[\"a\"]",
        "59999999999-[\"a\"]",
        "599999999999999999999999-[\"a\"]",
        "5 1-[\"a\"]",
        "51.5-[\"a\"]",
        "6-[]",
        "6x-[]",
        "611-[]",
        "61-",
        "61-{}",
        "51-[\"connect\"," + Placeholder0 + "]",
        "51-{}",
        "51-[]",

        // truncated or invalid JSON
        "2[\"a\"",
        "2[\"a\",",
        "2[\"a\",{]",
        "2[\"a\",{\"k\":}]",
        "2[\"a\"]]",
        "2[\"a\"] x",
        "2[\"a\"][\"b\"]",
        "2['a']",
        "2[a]",
        "2[\"a\",NaN]",
        "2[\"a\",Infinity]",
        "2[\"a\",undefined]",
        "2[\"a\",01]",
        "2[\"a\",1.]",
        "2[\"a\",.5]",
        "2[\"a\",+1]",
        "2[\"a\",0x10]",
        "2[\"a\",\"unterminated]",
        "2[\"a\",\"bad \\x escape\"]",
        "2[\"a\",\"\\u12\"]",
        "2[\"a\",//comment\n1]",
        "2[\"a\",1,]",
        "2[\"a\"]\u0000",
        "2[\"a\u0001\"]",
        "0{\"token\":\"123\"",
        "0{\"token\"}",
        "4{\"message\":",

        // ack id too long (16+ digits)
        "21234567890123456[\"a\"]",
        "29999999999999999999999[\"a\"]",
        "3/admin,1234567890123456[]",
        "61-1234567890123456[" + Placeholder0 + "]",
    };

    [Theory]
    [MemberData(nameof(MalformedText))]
    public void Malformed_text_is_rejected(string text)
    {
        var decoder = _parser.CreateDecoder();
        var status = decoder.Decode(EngineMessage.Text(text), out var packet, out var error);
        Assert.Equal(DecodeStatus.Error, status);
        Assert.Null(packet);
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Too_many_attachments_honours_the_configured_limit()
    {
        var atLimit = "510-[\"a\"" + string.Concat(Enumerable.Range(0, 10).Select(i => $",{{\"_placeholder\":true,\"num\":{i}}}")) + "]";
        Assert.Equal(DecodeStatus.NeedMore, _parser.CreateDecoder().Decode(EngineMessage.Text(atLimit), out _, out _));

        var strict = new JsonPacketParser(maxAttachments: 2);
        Assert.Equal(DecodeStatus.NeedMore, strict.CreateDecoder().Decode(EngineMessage.Text("52-[\"a\"]"), out _, out _));
        Assert.Equal(DecodeStatus.Error, strict.CreateDecoder().Decode(EngineMessage.Text("53-[\"a\"]"), out _, out var error));
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData("{\"_placeholder\":true,\"num\":1}")]
    [InlineData("{\"_placeholder\":true,\"num\":-1}")]
    [InlineData("{\"_placeholder\":true,\"num\":99999999999}")]
    [InlineData("{\"_placeholder\":true,\"num\":0.5}")]
    [InlineData("{\"_placeholder\":true,\"num\":\"0\"}")]
    [InlineData("{\"_placeholder\":true,\"num\":null}")]
    [InlineData("{\"_placeholder\":true}")]
    [InlineData("{\"nested\":[{\"_placeholder\":true,\"num\":5}]}")]
    public void Placeholder_out_of_range_or_malformed_is_rejected(string placeholder)
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text($"51-[\"a\",{placeholder}]"), out _, out _));
        var status = decoder.Decode(EngineMessage.Binary(new byte[] { 1 }), out var packet, out var error);
        Assert.Equal(DecodeStatus.Error, status);
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    [Fact]
    public void Placeholder_in_binary_packet_without_attachments_is_rejected()
    {
        Assert.Equal(DecodeStatus.Error, DecodeText("50-[\"a\"," + Placeholder0 + "]", out var packet, out var error));
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    [Fact]
    public void Binary_message_with_no_pending_packet_is_rejected()
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.Error, decoder.Decode(EngineMessage.Binary(new byte[] { 1, 2, 3 }), out var packet, out var error));
        Assert.Null(packet);
        Assert.NotNull(error);

        decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Text("2[\"a\"]"), out _, out _));
        Assert.Equal(DecodeStatus.Error, decoder.Decode(EngineMessage.Binary(ReadOnlyMemory<byte>.Empty), out _, out _));
    }

    [Fact]
    public void Extra_binary_message_after_completion_is_rejected()
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text("51-[\"a\"," + Placeholder0 + "]"), out _, out _));
        Assert.Equal(DecodeStatus.Complete, decoder.Decode(EngineMessage.Binary(new byte[] { 1 }), out _, out _));
        Assert.Equal(DecodeStatus.Error, decoder.Decode(EngineMessage.Binary(new byte[] { 2 }), out var packet, out _));
        Assert.Null(packet);
    }

    [Fact]
    public void Text_while_attachments_pending_is_rejected()
    {
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Text("52-[\"a\"," + Placeholder0 + ",{\"_placeholder\":true,\"num\":1}]"), out _, out _));
        Assert.Equal(DecodeStatus.NeedMore, decoder.Decode(EngineMessage.Binary(new byte[] { 1 }), out _, out _));
        var status = decoder.Decode(EngineMessage.Text("2[\"b\"]"), out var packet, out var error);
        Assert.Equal(DecodeStatus.Error, status);
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    [Fact]
    public void Deep_nesting_is_rejected()
    {
        var deep = "2[\"a\"," + new string('[', 200) + new string(']', 200) + "]";
        Assert.Equal(DecodeStatus.Error, DecodeText(deep, out var packet, out var error));
        Assert.Null(packet);
        Assert.NotNull(error);

        var objects = "2[\"a\"," + string.Concat(Enumerable.Repeat("{\"k\":", 100)) + "1" + new string('}', 100) + "]";
        Assert.Equal(DecodeStatus.Error, DecodeText(objects, out _, out _));
    }

    [Fact]
    public void Very_deep_nesting_does_not_overflow_the_stack()
    {
        var deep = "2[\"a\"," + new string('[', 1_000_000);
        Assert.Equal(DecodeStatus.Error, DecodeText(deep, out _, out _));
        var closed = "2[\"a\"," + new string('[', 100_000) + new string(']', 100_000) + "]";
        Assert.Equal(DecodeStatus.Error, DecodeText(closed, out _, out _));
    }

    [Fact]
    public void Moderate_nesting_is_accepted()
    {
        var nested = "2[\"a\"," + new string('[', 60) + new string(']', 60) + "]";
        Assert.Equal(DecodeStatus.Complete, DecodeText(nested, out _, out _));
    }

    [Fact]
    public void Invalid_utf8_in_event_name_does_not_throw()
    {
        byte[] body = [.. "2[\""u8, 0xff, 0xfe, .. "\",1]"u8];
        var status = _parser.CreateDecoder().Decode(EngineMessage.Text(body), out var packet, out var error);
        Assert.Equal(DecodeStatus.Error, status);
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    /// <summary>Invalid UTF-8 in an argument is a decode error: a handler would only meet it as an exception.</summary>
    [Theory]
    [MemberData(nameof(InvalidUtf8Cases))]
    public void Invalid_utf8_anywhere_is_a_decode_error(string template, byte[] invalid)
    {
        var parts = template.Split('\u0000');
        byte[] body = [.. Encoding.UTF8.GetBytes(parts[0]), .. invalid, .. Encoding.UTF8.GetBytes(parts[1])];
        var status = _parser.CreateDecoder().Decode(EngineMessage.Text(body), out var packet, out var error);
        Assert.Equal(DecodeStatus.Error, status);
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    /// <summary>A lone surrogate escape parses as JSON, but no string can be read from it: a decode error, not a handler's exception.</summary>
    [Theory]
    [InlineData("2[\"a\",\"\\ud800\"]")]
    [InlineData("2[\"a\",\"x\\udc00y\"]")]
    [InlineData("2[\"a\",{\"\\ud800\":1}]")]
    [InlineData("2[\"a\",[{\"k\":\"\\uDBFF\\u0041\"}]]")]
    [InlineData("3[\"\\ud800\"]")]
    [InlineData("0{\"token\":\"\\ud800\"}")]
    public void Lone_surrogate_escape_in_an_argument_is_a_decode_error(string text)
    {
        Assert.Equal(DecodeStatus.Error, DecodeText(text, out var packet, out var error));
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    [Theory]
    [InlineData("2[\"a\",\"\\ud83d\\ude00 \\u0001 \\n \\u00e9\"]", "\ud83d\ude00 \u0001 \n \u00e9")]
    [InlineData("2[\"a\",{\"\\u006b\":\"\\\\u\"}]", null)]
    public void Valid_escapes_still_decode(string text, string? expected)
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText(text, out var packet, out _));
        if (expected is not null)
        {
            Assert.Equal(expected, packet!.Data!.Value[1].GetString());
        }
    }

    [Fact]
    public void Lone_surrogate_escape_in_event_name_does_not_throw()
    {
        var status = DecodeText("2[\"\\ud800\",1]", out var packet, out var error);
        Assert.Equal(DecodeStatus.Error, status);
        Assert.Null(packet);
        Assert.NotNull(error);
    }

    public static TheoryData<string, byte[]> InvalidUtf8Cases()
    {
        string[] templates = ["2[\"\u0000\",1]", "2[\"a\",\"\u0000\"]", "2[\"a\",{\"\u0000\":1}]", "2/\u0000,[\"a\"]", "0{\"\u0000\":1}", "4\"\u0000\"", "3[\"\u0000\"]"];
        byte[][] invalid = [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf]];
        var data = new TheoryData<string, byte[]>();
        foreach (var template in templates)
        {
            foreach (var bytes in invalid)
            {
                data.Add(template, bytes);
            }
        }

        return data;
    }

    /// <summary>Text frames are not guaranteed to be valid UTF-8 (polling bodies, raw WebSocket frames).</summary>
    [Theory]
    [MemberData(nameof(InvalidUtf8Cases))]
    public void Invalid_utf8_anywhere_never_throws(string template, byte[] invalid)
    {
        var parts = template.Split('\u0000');
        byte[] body = [.. Encoding.UTF8.GetBytes(parts[0]), .. invalid, .. Encoding.UTF8.GetBytes(parts[1])];
        var exception = Record.Exception(() => _parser.CreateDecoder().Decode(EngineMessage.Text(body), out _, out _));
        Assert.Null(exception);
    }

    [Theory]
    [InlineData("{\"\\ud800\":1}")]
    [InlineData("{\"\\udc00x\":1}")]
    [InlineData("{\"\\ud800_placeholder\":1}")]
    [InlineData("{\"_placeholde\\ud800\":1}")]
    [InlineData("{\"\\ud800\\ud800xxxxxxxxxxxx\":1}")]
    [InlineData("{\"\\ud800\\u0041xxxxxxxxxxxx\":1}")]
    [InlineData("[{\"k\":{\"\\ud800\\u0041xxxxxxxxxxxx\":null}}]")]
    public void Lone_surrogate_escape_in_property_name_of_binary_packet_does_not_throw(string value)
    {
        // refused with the header already (an escape that is not text), and nothing throws after
        var decoder = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.Error, decoder.Decode(EngineMessage.Text($"51-[\"a\",{value},{Placeholder0}]"), out _, out _));
        var exception = Record.Exception(() => decoder.Decode(EngineMessage.Binary(new byte[] { 1 }), out _, out _));
        Assert.Null(exception);
    }

    [Fact]
    public void Object_with_non_true_placeholder_flag_is_plain_data_in_binary_packet()
    {
        // The reference parser (socket.io-parser binary.ts) only treats `_placeholder === true` as a placeholder;
        // any other object, including {"_placeholder":false}, is ordinary user data.
        var decoder = _parser.CreateDecoder();
        Assert.Equal(
            DecodeStatus.NeedMore,
            decoder.Decode(EngineMessage.Text("51-[\"a\",{\"_placeholder\":false,\"x\":1}," + Placeholder0 + "]"), out _, out _));
        var status = decoder.Decode(EngineMessage.Binary(new byte[] { 7 }), out var packet, out var error);
        Assert.True(status == DecodeStatus.Complete, $"expected Complete, got {status} ({error})");
        Assert.Equal(new byte[] { 7 }, packet!.Attachments[0].ToArray());
    }

    [Fact]
    public void Placeholder_shaped_object_in_plain_event_is_left_alone()
    {
        Assert.Equal(DecodeStatus.Complete, DecodeText("2[\"a\"," + Placeholder0 + "]", out var packet, out _));
        Assert.Equal(SocketPacketType.Event, packet!.Type);
        Assert.Empty(packet.Attachments);
    }

    [Fact]
    public void Decoder_error_does_not_poison_other_decoders()
    {
        var bad = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.NeedMore, bad.Decode(EngineMessage.Text("51-[\"a\"," + Placeholder0 + "]"), out _, out _));
        var good = _parser.CreateDecoder();
        Assert.Equal(DecodeStatus.Complete, good.Decode(EngineMessage.Text("2[\"b\"]"), out var packet, out _));
        Assert.Equal("b", packet!.Data!.Value[0].GetString());
    }
}
