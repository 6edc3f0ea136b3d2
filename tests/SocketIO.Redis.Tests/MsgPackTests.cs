namespace SocketIO.Redis.Tests;

/// <summary>The MessagePack subset against byte sequences notepack.io 3.0 writes.</summary>
public sealed class MsgPackTests
{
    [Fact]
    public void Decodes_NotepackSpecials()
    {
        // ["a", <bin 01 02>, undefined (d4 00 00), ArrayBuffer as ext 0 (c7 02 00 ..), nil, -1, 300, 1.5]
        byte[] wire = [0x98, 0xa1, (byte)'a', 0xc4, 2, 1, 2, 0xd4, 0, 0, 0xc7, 2, 0, 5, 6, 0xc0, 0xff, 0xcd, 1, 44, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0];
        var list = Assert.IsType<List<object?>>(MsgPack.Decode(wire));
        Assert.Equal("a", list[0]);
        Assert.Equal(new byte[] { 1, 2 }, list[1]);
        Assert.Null(list[2]);
        Assert.Equal(new byte[] { 5, 6 }, list[3]);
        Assert.Null(list[4]);
        Assert.Equal(-1L, list[5]);
        Assert.Equal(300L, list[6]);
        Assert.Equal(1.5, list[7]);
    }

    [Fact]
    public void Decodes_Timestamps_AsIsoStrings()
    {
        // timestamp 32: 1 700 000 000 s
        byte[] wire = [0xd6, 0xff, 0x65, 0x53, 0xf1, 0x00];
        Assert.Equal("2023-11-14T22:13:20.000Z", MsgPack.Decode(wire));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(40)]
    [InlineData(300)]
    [InlineData(70_000)]
    public void RoundTrips_EverySize(int size)
    {
        var text = new string('x', size);
        var bytes = Enumerable.Range(0, size).Select(i => (byte)i).ToArray();
        var list = Enumerable.Range(0, Math.Min(size, 20)).Select(i => (object?)(long)i).ToList();
        var map = Enumerable.Range(0, Math.Min(size, 20)).ToDictionary(i => "k" + i, i => (object?)(i % 2 == 0));
        var value = new List<object?> { text, bytes, list, map, long.MaxValue, -40L, -200L, 2.25, null };
        var back = Assert.IsType<List<object?>>(MsgPack.Decode(MsgPack.Encode(value)));
        Assert.Equal(text, back[0]);
        Assert.Equal(bytes, back[1]);
        Assert.Equal(list, back[2]);
        Assert.Equal(map, back[3]);
        Assert.Equal(long.MaxValue, back[4]);
        Assert.Equal(-40L, back[5]);
        Assert.Equal(-200L, back[6]);
        Assert.Equal(2.25, back[7]);
        Assert.Null(back[8]);
    }

    [Theory]
    [InlineData(new byte[] { 0x92, 0x01 })]
    [InlineData(new byte[] { 0xc4, 0x05, 0x01 })]
    [InlineData(new byte[] { 0xc1 })]
    [InlineData(new byte[] { 0xdd, 0xff, 0xff, 0xff, 0xff })]
    [InlineData(new byte[] { 0x01, 0x02 })]
    public void Rejects_MalformedInput(byte[] wire) => Assert.Throws<FormatException>(() => MsgPack.Decode(wire));

    [Fact]
    public void Rejects_DeepNesting()
    {
        var wire = Enumerable.Repeat((byte)0x91, 200).Append((byte)0xc0).ToArray();
        Assert.Throws<FormatException>(() => MsgPack.Decode(wire));
    }
}
