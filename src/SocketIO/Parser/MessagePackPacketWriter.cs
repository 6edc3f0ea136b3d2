using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace SocketIO.Parser;

/// <summary>
/// Writes one packet of the MessagePack parser: the map <c>{type, nsp, data?, id?}</c>, where
/// <c>data</c> is transcoded token by token from the JSON that System.Text.Json wrote for the
/// arguments (no <see cref="JsonDocument"/> in between). A map's or an array's size is known only
/// at its end, so each gets a 5-byte header slot while writing; <see cref="ToArray"/> then writes
/// the smallest header for each, so the bytes are those of a MessagePack writer that knew the
/// sizes. A binary placeholder <c>{"_placeholder":true,"num":n}</c> becomes the <c>bin</c> of its
/// attachment. One instance per thread, reused.
/// </summary>
internal sealed class MessagePackPacketWriter
{
    private const int SlotSize = 5;
    private const int KeepBytes = 64 * 1024; // a buffer grown past this is not kept for the next packet

    [ThreadStatic]
    private static MessagePackPacketWriter? t_cached;

    private readonly List<Slot> _slots = [];
    private readonly List<int> _open = []; // indexes into _slots of the containers being written
    private byte[] _buffer = new byte[1024];
    private int _length;

    /// <summary>Takes this thread's writer (a new one when it is in use, as by a converter that encodes a packet itself).</summary>
    public static MessagePackPacketWriter Rent()
    {
        var writer = t_cached ?? new MessagePackPacketWriter();
        t_cached = null;
        writer._length = 0;
        writer._slots.Clear();
        writer._open.Clear();
        return writer;
    }

    /// <summary>Gives the writer back to this thread unless it grew large.</summary>
    public static void Return(MessagePackPacketWriter writer)
    {
        if (writer._buffer.Length <= KeepBytes)
        {
            t_cached = writer;
        }
    }

    public void WriteMapHeader(int count) => WriteContainerHeader(count, isMap: true);

    public void WriteArrayHeader(int count) => WriteContainerHeader(count, isMap: false);

    public void WriteNil() => Append(0xc0);

    public void Write(bool value) => Append(value ? (byte)0xc3 : (byte)0xc2);

    public void Write(long value)
    {
        if (value >= 0)
        {
            Write((ulong)value);
        }
        else if (value >= -32)
        {
            Append(unchecked((byte)value));
        }
        else if (value >= sbyte.MinValue)
        {
            var span = Grow(2);
            span[0] = 0xd0;
            span[1] = unchecked((byte)value);
        }
        else if (value >= short.MinValue)
        {
            var span = Grow(3);
            span[0] = 0xd1;
            BinaryPrimitives.WriteInt16BigEndian(span[1..], (short)value);
        }
        else if (value >= int.MinValue)
        {
            var span = Grow(5);
            span[0] = 0xd2;
            BinaryPrimitives.WriteInt32BigEndian(span[1..], (int)value);
        }
        else
        {
            var span = Grow(9);
            span[0] = 0xd3;
            BinaryPrimitives.WriteInt64BigEndian(span[1..], value);
        }
    }

    public void Write(ulong value)
    {
        if (value <= 0x7f)
        {
            Append((byte)value);
        }
        else if (value <= byte.MaxValue)
        {
            var span = Grow(2);
            span[0] = 0xcc;
            span[1] = (byte)value;
        }
        else if (value <= ushort.MaxValue)
        {
            var span = Grow(3);
            span[0] = 0xcd;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)value);
        }
        else if (value <= uint.MaxValue)
        {
            var span = Grow(5);
            span[0] = 0xce;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)value);
        }
        else
        {
            var span = Grow(9);
            span[0] = 0xcf;
            BinaryPrimitives.WriteUInt64BigEndian(span[1..], value);
        }
    }

    public void Write(double value)
    {
        var span = Grow(9);
        span[0] = 0xcb;
        BinaryPrimitives.WriteDoubleBigEndian(span[1..], value);
    }

    /// <summary>A string from its text.</summary>
    public void Write(string value)
    {
        var max = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max <= 256)
        {
            Span<byte> utf8 = stackalloc byte[max];
            WriteString(utf8[..Encoding.UTF8.GetBytes(value, utf8)]);
        }
        else
        {
            WriteString(Encoding.UTF8.GetBytes(value));
        }
    }

    /// <summary>A string from its UTF-8 bytes.</summary>
    public void WriteString(ReadOnlySpan<byte> utf8) => WriteSized(utf8, fixStr: true, 0xd9, 0xda, 0xdb);

    public void WriteBinary(ReadOnlySpan<byte> bytes) => WriteSized(bytes, fixStr: false, 0xc4, 0xc5, 0xc6);

    /// <summary>A str or bin: its smallest header (fixstr below 32 bytes for a string, else 8, 16 or 32-bit length), then the bytes.</summary>
    private void WriteSized(ReadOnlySpan<byte> bytes, bool fixStr, byte code8, byte code16, byte code32)
    {
        var n = bytes.Length;
        Span<byte> span;
        if (fixStr && n < 32)
        {
            span = Grow(1 + n);
            span[0] = (byte)(0xa0 | n);
            span = span[1..];
        }
        else if (n <= byte.MaxValue)
        {
            span = Grow(2 + n);
            span[0] = code8;
            span[1] = (byte)n;
            span = span[2..];
        }
        else if (n <= ushort.MaxValue)
        {
            span = Grow(3 + n);
            span[0] = code16;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)n);
            span = span[3..];
        }
        else
        {
            span = Grow(5 + n);
            span[0] = code32;
            BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)n);
            span = span[5..];
        }

        bytes.CopyTo(span);
    }

    /// <summary>
    /// The JSON text <paramref name="json"/> (as System.Text.Json writes it) as one MessagePack
    /// value; objects that are binary placeholders become the bin of their attachment.
    /// </summary>
    public void WriteJson(ReadOnlySpan<byte> json, IReadOnlyList<ReadOnlyMemory<byte>> attachments, int maxDepth)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth });
        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    CountValue();
                    if (attachments.Count > 0 && TryReadPlaceholder(reader, out var num) && num < attachments.Count)
                    {
                        WriteBinary(attachments[num].Span);
                        reader.Skip();
                    }
                    else
                    {
                        OpenSlot(isMap: true);
                    }

                    break;
                case JsonTokenType.StartArray:
                    CountValue();
                    OpenSlot(isMap: false);
                    break;
                case JsonTokenType.EndObject:
                case JsonTokenType.EndArray:
                    _open.RemoveAt(_open.Count - 1);
                    break;
                case JsonTokenType.PropertyName:
                    CountIn(_open[^1]);
                    WriteJsonString(ref reader);
                    break;
                case JsonTokenType.String:
                    CountValue();
                    WriteJsonString(ref reader);
                    break;
                case JsonTokenType.Number:
                    CountValue();
                    if (reader.TryGetInt64(out var l))
                    {
                        Write(l);
                    }
                    else if (reader.TryGetUInt64(out var u))
                    {
                        Write(u);
                    }
                    else
                    {
                        Write(reader.GetDouble());
                    }

                    break;
                case JsonTokenType.True:
                    CountValue();
                    Write(true);
                    break;
                case JsonTokenType.False:
                    CountValue();
                    Write(false);
                    break;
                default:
                    CountValue();
                    WriteNil();
                    break;
            }
        }
    }

    /// <summary>The packet's bytes, each container with the smallest header for its size.</summary>
    public byte[] ToArray()
    {
        var size = _length;
        foreach (var slot in _slots)
        {
            size -= SlotSize - HeaderSize(slot.Count);
        }

        var result = GC.AllocateUninitializedArray<byte>(size);
        var from = 0;
        var to = 0;
        foreach (var slot in _slots)
        {
            var chunk = slot.Position - from;
            _buffer.AsSpan(from, chunk).CopyTo(result.AsSpan(to));
            to += chunk;
            to += WriteHeader(result.AsSpan(to), slot.Count, slot.IsMap);
            from = slot.Position + SlotSize;
        }

        _buffer.AsSpan(from, _length - from).CopyTo(result.AsSpan(to));
        return result;
    }

    private static int HeaderSize(int count) => count < 16 ? 1 : count <= ushort.MaxValue ? 3 : 5;

    private static int WriteHeader(Span<byte> span, int count, bool isMap)
    {
        if (count < 16)
        {
            span[0] = (byte)((isMap ? 0x80 : 0x90) | count);
            return 1;
        }

        if (count <= ushort.MaxValue)
        {
            span[0] = isMap ? (byte)0xde : (byte)0xdc;
            BinaryPrimitives.WriteUInt16BigEndian(span[1..], (ushort)count);
            return 3;
        }

        span[0] = isMap ? (byte)0xdf : (byte)0xdd;
        BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)count);
        return 5;
    }

    /// <summary>Whether the object starting at the reader is exactly <c>{"_placeholder":true,"num":n}</c> (read on a copy).</summary>
    private static bool TryReadPlaceholder(Utf8JsonReader copy, out int num)
    {
        num = -1;
        return copy.Read() && copy.TokenType == JsonTokenType.PropertyName && copy.ValueTextEquals("_placeholder"u8)
            && copy.Read() && copy.TokenType == JsonTokenType.True
            && copy.Read() && copy.TokenType == JsonTokenType.PropertyName && copy.ValueTextEquals("num"u8)
            && copy.Read() && copy.TokenType == JsonTokenType.Number && copy.TryGetInt32(out num) && num >= 0
            && copy.Read() && copy.TokenType == JsonTokenType.EndObject;
    }

    private void WriteContainerHeader(int count, bool isMap)
    {
        CountValue();
        var span = Grow(HeaderSize(count));
        WriteHeader(span, count, isMap);
    }

    private void WriteJsonString(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped)
        {
            WriteString(reader.ValueSpan);
            return;
        }

        var max = reader.ValueSpan.Length;
        byte[]? rented = null;
        Span<byte> scratch = max <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(max));
        try
        {
            WriteString(scratch[..reader.CopyString(scratch)]);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>A value inside an array counts for it (in a map, its property name counted).</summary>
    private void CountValue()
    {
        if (_open.Count > 0 && !_slots[_open[^1]].IsMap)
        {
            CountIn(_open[^1]);
        }
    }

    private void CountIn(int slot)
    {
        var s = _slots[slot];
        _slots[slot] = s with { Count = s.Count + 1 };
    }

    private void OpenSlot(bool isMap)
    {
        _slots.Add(new Slot(_length, 0, isMap));
        _open.Add(_slots.Count - 1);
        Grow(SlotSize);
    }

    private void Append(byte b) => Grow(1)[0] = b;

    private Span<byte> Grow(int n)
    {
        if (_length + n > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + n));
        }

        var span = _buffer.AsSpan(_length, n);
        _length += n;
        return span;
    }

    private readonly record struct Slot(int Position, int Count, bool IsMap);
}
