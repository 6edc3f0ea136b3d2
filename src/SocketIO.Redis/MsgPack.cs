using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SocketIO.Redis;

/// <summary>
/// The MessagePack subset that notepack.io (the Node adapter's codec) writes and reads. Values are
/// plain .NET objects: null, bool, long, ulong, double, string, byte[] (bin), <see cref="List{T}"/>
/// of object (array) and <see cref="Dictionary{TKey, TValue}"/> of string to object (map).
/// Decoding reads bin and ext type 0 as byte[], <c>d4 00 00</c> (undefined) as null and
/// timestamps (ext -1, and notepack's old fixext8 type 0 date) as an ISO 8601 string.
/// </summary>
public static class MsgPack
{
    /// <summary>Deepest nesting accepted when decoding.</summary>
    public const int MaxDepth = 64;

    /// <summary>Encodes a value (null, bool, numbers, strings, byte arrays, lists, dictionaries) as MessagePack.</summary>
    public static byte[] Encode(object? value)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        Write(buffer, value, 0);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Decodes one MessagePack value into the types <see cref="Encode"/> takes.</summary>
    public static object? Decode(ReadOnlySpan<byte> data)
    {
        var pos = 0;
        var value = Read(data, ref pos, 0);
        if (pos != data.Length)
        {
            throw new FormatException($"MessagePack: {data.Length - pos} bytes after the value.");
        }

        return value;
    }

    private static void Write(ArrayBufferWriter<byte> w, object? value, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new FormatException("MessagePack: nested too deeply.");
        }

        switch (value)
        {
            case null:
                Put(w, 0xc0);
                break;
            case bool b:
                Put(w, b ? (byte)0xc3 : (byte)0xc2);
                break;
            case string s:
                WriteString(w, s);
                break;
            case byte[] bytes:
                WriteBin(w, bytes);
                break;
            case ReadOnlyMemory<byte> rom:
                WriteBin(w, rom.Span);
                break;
            case int i:
                WriteInt(w, i);
                break;
            case long l:
                WriteInt(w, l);
                break;
            case ulong ul when ul > long.MaxValue:
                Put(w, 0xcf);
                BinaryPrimitives.WriteUInt64BigEndian(w.GetSpan(8), ul);
                w.Advance(8);
                break;
            case ulong ul:
                WriteInt(w, (long)ul);
                break;
            case double d:
                WriteDouble(w, d);
                break;
            case float f:
                WriteDouble(w, f);
                break;
            case decimal m:
                WriteDouble(w, (double)m);
                break;
            case IReadOnlyDictionary<string, object?> map:
                WriteHeader(w, map.Count, 0x80, 0xde, 0xdf);
                foreach (var (key, item) in map)
                {
                    WriteString(w, key);
                    Write(w, item, depth + 1);
                }

                break;
            case IReadOnlyList<object?> list:
                WriteHeader(w, list.Count, 0x90, 0xdc, 0xdd);
                foreach (var item in list)
                {
                    Write(w, item, depth + 1);
                }

                break;
            case IEnumerable<string> strings:
                Write(w, strings.Cast<object?>().ToList(), depth);
                break;
            default:
                throw new NotSupportedException($"MessagePack: cannot encode {value.GetType()}.");
        }
    }

    private static void Put(ArrayBufferWriter<byte> w, byte b)
    {
        w.GetSpan(1)[0] = b;
        w.Advance(1);
    }

    private static void WriteHeader(ArrayBufferWriter<byte> w, int count, byte fix, byte x16, byte x32)
    {
        if (count < 16)
        {
            Put(w, (byte)(fix | count));
        }
        else if (count <= ushort.MaxValue)
        {
            Put(w, x16);
            BinaryPrimitives.WriteUInt16BigEndian(w.GetSpan(2), (ushort)count);
            w.Advance(2);
        }
        else
        {
            Put(w, x32);
            BinaryPrimitives.WriteUInt32BigEndian(w.GetSpan(4), (uint)count);
            w.Advance(4);
        }
    }

    private static void WriteString(ArrayBufferWriter<byte> w, string s)
    {
        var length = Encoding.UTF8.GetByteCount(s);
        if (length < 32)
        {
            Put(w, (byte)(0xa0 | length));
        }
        else if (length <= byte.MaxValue)
        {
            Put(w, 0xd9);
            Put(w, (byte)length);
        }
        else if (length <= ushort.MaxValue)
        {
            Put(w, 0xda);
            BinaryPrimitives.WriteUInt16BigEndian(w.GetSpan(2), (ushort)length);
            w.Advance(2);
        }
        else
        {
            Put(w, 0xdb);
            BinaryPrimitives.WriteUInt32BigEndian(w.GetSpan(4), (uint)length);
            w.Advance(4);
        }

        w.Advance(Encoding.UTF8.GetBytes(s, w.GetSpan(length)));
    }

    private static void WriteBin(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length <= byte.MaxValue)
        {
            Put(w, 0xc4);
            Put(w, (byte)bytes.Length);
        }
        else if (bytes.Length <= ushort.MaxValue)
        {
            Put(w, 0xc5);
            BinaryPrimitives.WriteUInt16BigEndian(w.GetSpan(2), (ushort)bytes.Length);
            w.Advance(2);
        }
        else
        {
            Put(w, 0xc6);
            BinaryPrimitives.WriteUInt32BigEndian(w.GetSpan(4), (uint)bytes.Length);
            w.Advance(4);
        }

        w.Write(bytes);
    }

    private static void WriteInt(ArrayBufferWriter<byte> w, long v)
    {
        if (v is >= 0 and < 128)
        {
            Put(w, (byte)v);
        }
        else if (v is < 0 and >= -32)
        {
            Put(w, (byte)(sbyte)v);
        }
        else if (v is >= int.MinValue and <= int.MaxValue)
        {
            Put(w, 0xd2);
            BinaryPrimitives.WriteInt32BigEndian(w.GetSpan(4), (int)v);
            w.Advance(4);
        }
        else
        {
            Put(w, 0xd3);
            BinaryPrimitives.WriteInt64BigEndian(w.GetSpan(8), v);
            w.Advance(8);
        }
    }

    private static void WriteDouble(ArrayBufferWriter<byte> w, double d)
    {
        if (Math.Floor(d) == d && d is >= long.MinValue and <= long.MaxValue && !double.IsInfinity(d))
        {
            // notepack writes integral numbers as integers
            WriteInt(w, (long)d);
            return;
        }

        Put(w, 0xcb);
        BinaryPrimitives.WriteDoubleBigEndian(w.GetSpan(8), d);
        w.Advance(8);
    }

    private static object? Read(ReadOnlySpan<byte> d, ref int pos, int depth)
    {
        if (depth > MaxDepth)
        {
            throw new FormatException("MessagePack: nested too deeply.");
        }

        var b = Take(d, ref pos, 1)[0];
        switch (b)
        {
            case <= 0x7f:
                return (long)b;
            case >= 0x80 and <= 0x8f:
                return ReadMap(d, ref pos, b & 0x0f, depth);
            case >= 0x90 and <= 0x9f:
                return ReadArray(d, ref pos, b & 0x0f, depth);
            case >= 0xa0 and <= 0xbf:
                return Encoding.UTF8.GetString(Take(d, ref pos, b & 0x1f));
            case >= 0xe0:
                return (long)(sbyte)b;
        }

        switch (b)
        {
            case 0xc0:
                return null;
            case 0xc2:
                return false;
            case 0xc3:
                return true;
            case 0xc4:
                return Take(d, ref pos, Take(d, ref pos, 1)[0]).ToArray();
            case 0xc5:
                return Take(d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref pos, 2))).ToArray();
            case 0xc6:
                return Take(d, ref pos, Length(BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref pos, 4)))).ToArray();
            case 0xc7:
                {
                    var length = Take(d, ref pos, 1)[0];
                    return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, length));
                }

            case 0xc8:
                {
                    var length = BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref pos, 2));
                    return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, length));
                }

            case 0xc9:
                {
                    var length = Length(BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref pos, 4)));
                    return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, length));
                }

            case 0xca:
                return (double)BinaryPrimitives.ReadSingleBigEndian(Take(d, ref pos, 4));
            case 0xcb:
                return BinaryPrimitives.ReadDoubleBigEndian(Take(d, ref pos, 8));
            case 0xcc:
                return (long)Take(d, ref pos, 1)[0];
            case 0xcd:
                return (long)BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref pos, 2));
            case 0xce:
                return (long)BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref pos, 4));
            case 0xcf:
                {
                    var v = BinaryPrimitives.ReadUInt64BigEndian(Take(d, ref pos, 8));
                    return v <= long.MaxValue ? (long)v : v;
                }

            case 0xd0:
                return (long)(sbyte)Take(d, ref pos, 1)[0];
            case 0xd1:
                return (long)BinaryPrimitives.ReadInt16BigEndian(Take(d, ref pos, 2));
            case 0xd2:
                return (long)BinaryPrimitives.ReadInt32BigEndian(Take(d, ref pos, 4));
            case 0xd3:
                return BinaryPrimitives.ReadInt64BigEndian(Take(d, ref pos, 8));
            case 0xd4:
                return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, 1));
            case 0xd5:
                return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, 2));
            case 0xd6:
                return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, 4));
            case 0xd7:
                return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, 8));
            case 0xd8:
                return Ext(Take(d, ref pos, 1)[0], Take(d, ref pos, 16));
            case 0xd9:
                return Encoding.UTF8.GetString(Take(d, ref pos, Take(d, ref pos, 1)[0]));
            case 0xda:
                return Encoding.UTF8.GetString(Take(d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref pos, 2))));
            case 0xdb:
                return Encoding.UTF8.GetString(Take(d, ref pos, Length(BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref pos, 4)))));
            case 0xdc:
                return ReadArray(d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref pos, 2)), depth);
            case 0xdd:
                return ReadArray(d, ref pos, Length(BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref pos, 4))), depth);
            case 0xde:
                return ReadMap(d, ref pos, BinaryPrimitives.ReadUInt16BigEndian(Take(d, ref pos, 2)), depth);
            case 0xdf:
                return ReadMap(d, ref pos, Length(BinaryPrimitives.ReadUInt32BigEndian(Take(d, ref pos, 4))), depth);
            default:
                throw new FormatException($"MessagePack: unknown type byte 0x{b:x2}.");
        }
    }

    private static int Length(uint length) => length <= int.MaxValue ? (int)length : throw new FormatException("MessagePack: length too large.");

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> d, ref int pos, int count)
    {
        if (count < 0 || pos + count > d.Length)
        {
            throw new FormatException("MessagePack: truncated input.");
        }

        var slice = d.Slice(pos, count);
        pos += count;
        return slice;
    }

    private static object? Ext(byte type, ReadOnlySpan<byte> data)
    {
        var ext = (sbyte)type;
        if (ext == 0)
        {
            // notepack: d4 00 00 is undefined, d7 00 <ms> an old-style date, any other ext 0 an ArrayBuffer
            if (data.Length == 1)
            {
                return null;
            }

            if (data.Length == 8)
            {
                var ms = (BinaryPrimitives.ReadInt32BigEndian(data) * 4294967296L) + BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
                return Iso(DateTimeOffset.FromUnixTimeMilliseconds(ms));
            }

            return data.ToArray();
        }

        if (ext == -1)
        {
            switch (data.Length)
            {
                case 4:
                    return Iso(DateTimeOffset.FromUnixTimeSeconds(BinaryPrimitives.ReadUInt32BigEndian(data)));
                case 8:
                    {
                        var v = BinaryPrimitives.ReadUInt64BigEndian(data);
                        var ns = (long)(v >> 34);
                        var s = (long)(v & 0x3_ffff_ffffUL);
                        return Iso(DateTimeOffset.FromUnixTimeSeconds(s).AddTicks(ns / 100));
                    }

                case 12:
                    {
                        var ns = BinaryPrimitives.ReadUInt32BigEndian(data);
                        var s = BinaryPrimitives.ReadInt64BigEndian(data[4..]);
                        return Iso(DateTimeOffset.FromUnixTimeSeconds(s).AddTicks(ns / 100));
                    }
            }
        }

        // other extension types have no meaning in Socket.IO: carried as their bytes
        return data.ToArray();
    }

    private static string Iso(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static List<object?> ReadArray(ReadOnlySpan<byte> d, ref int pos, int count, int depth)
    {
        if (count > d.Length - pos)
        {
            throw new FormatException("MessagePack: truncated input.");
        }

        var list = new List<object?>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(Read(d, ref pos, depth + 1));
        }

        return list;
    }

    private static Dictionary<string, object?> ReadMap(ReadOnlySpan<byte> d, ref int pos, int count, int depth)
    {
        if (count > d.Length - pos)
        {
            throw new FormatException("MessagePack: truncated input.");
        }

        var map = new Dictionary<string, object?>(count, StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var key = Read(d, ref pos, depth + 1);
            var value = Read(d, ref pos, depth + 1);
            map[key switch
            {
                string s => s,
                long l => l.ToString(CultureInfo.InvariantCulture),
                _ => Convert.ToString(key, CultureInfo.InvariantCulture) ?? string.Empty,
            }] = value;
        }

        return map;
    }

    /// <summary>
    /// The value of a JSON element with its binary placeholders (<c>{"_placeholder":true,"num":n}</c>)
    /// replaced by the attachments' bytes: what the Node adapter publishes (binary inline).
    /// </summary>
    public static object? FromJson(JsonElement element, IReadOnlyList<ReadOnlyMemory<byte>> attachments, int depth = 0)
    {
        ArgumentNullException.ThrowIfNull(attachments);
        if (depth > MaxDepth)
        {
            throw new FormatException("JSON nested too deeply.");
        }

        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                if (element.TryGetProperty("_placeholder", out var flag) && flag.ValueKind == JsonValueKind.True
                    && element.TryGetProperty("num", out var num) && num.TryGetInt32(out var n) && n >= 0 && n < attachments.Count)
                {
                    return attachments[n].ToArray();
                }

                var map = new Dictionary<string, object?>(StringComparer.Ordinal);
                foreach (var property in element.EnumerateObject())
                {
                    map[property.Name] = FromJson(property.Value, attachments, depth + 1);
                }

                return map;
            case JsonValueKind.Array:
                var list = new List<object?>(element.GetArrayLength());
                foreach (var item in element.EnumerateArray())
                {
                    list.Add(FromJson(item, attachments, depth + 1));
                }

                return list;
            case JsonValueKind.String:
                return element.GetString();
            case JsonValueKind.Number:
                return element.TryGetInt64(out var l) ? (object)l : element.GetDouble();
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            default:
                return null;
        }
    }
}
