using System.Text;
using EngineIO;

namespace SocketIO.Tests.Parser;

/// <summary>The public surface of <see cref="EngineMessage"/>, the unit the parser encodes to and decodes from.</summary>
public class EngineMessageTests
{
    [Fact]
    public void Text_from_string_prefixes_message_type()
    {
        var message = EngineMessage.Text("2[\"héllo\"]");
        Assert.False(message.IsBinary);
        Assert.False(message.IsVolatile);
        Assert.Equal("42[\"héllo\"]", Encoding.UTF8.GetString(message.Frame.Span));
        Assert.Equal("2[\"héllo\"]", Encoding.UTF8.GetString(message.Data.Span));
        Assert.Equal("42[\"héllo\"]", message.ToString());
    }

    [Fact]
    public void Text_from_bytes_copies_input()
    {
        var bytes = Encoding.UTF8.GetBytes("2[\"a\"]");
        var message = EngineMessage.Text(bytes, isVolatile: true);
        bytes[0] = (byte)'9';
        Assert.True(message.IsVolatile);
        Assert.Equal("42[\"a\"]", Encoding.UTF8.GetString(message.Frame.Span));
    }

    [Fact]
    public void Empty_text_is_just_the_type_character()
    {
        var message = EngineMessage.Text(string.Empty);
        Assert.Equal(1, message.Frame.Length);
        Assert.True(message.Data.IsEmpty);
    }

    [Fact]
    public void TextFrame_wraps_without_copying()
    {
        var frame = Encoding.UTF8.GetBytes("40");
        var message = EngineMessage.TextFrame(frame);
        Assert.False(message.IsBinary);
        Assert.True(message.Frame.Span == frame.AsSpan(), "frame must not be copied");
        Assert.Equal("0", Encoding.UTF8.GetString(message.Data.Span));
    }

    [Fact]
    public void TextFrame_rejects_frames_not_starting_with_message_type()
    {
        Assert.Throws<ArgumentNullException>(() => EngineMessage.TextFrame(null!));
        Assert.Throws<ArgumentException>(() => EngineMessage.TextFrame([]));
        Assert.Throws<ArgumentException>(() => EngineMessage.TextFrame(Encoding.UTF8.GetBytes("2probe")));
    }

    [Fact]
    public void Binary_data_is_the_whole_frame()
    {
        var bytes = new byte[] { 0x34, 0x00, 0xff };
        var message = EngineMessage.Binary(bytes, isVolatile: true);
        Assert.True(message.IsBinary);
        Assert.True(message.IsVolatile);
        Assert.Equal(bytes, message.Frame.ToArray());
        Assert.Equal(bytes, message.Data.ToArray());
        Assert.Equal("<binary 3 bytes>", message.ToString());
    }

    [Fact]
    public void Binary_may_be_empty()
    {
        var message = EngineMessage.Binary(ReadOnlyMemory<byte>.Empty);
        Assert.True(message.IsBinary);
        Assert.True(message.Data.IsEmpty);
    }
}
