using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;
using System.Text.Json;

namespace LoadGen;

/// <summary>
/// The little of MessagePack the load client needs for npm's <c>socket.io-msgpack-parser</c> 3.x
/// format (a Socket.IO packet is one binary WebSocket message holding the map
/// <c>{type, nsp, data?, id?}</c>): a reader over one message that skips or reads values, and a
/// writer for the packets the client sends.
/// </summary>
internal ref struct MsgPackReader
{
    private readonly ReadOnlySpan<byte> _s;

    public MsgPackReader(ReadOnlySpan<byte> s)
    {
        _s = s;
        Pos = 0;
    }

    public int Pos;

    public readonly bool End => Pos >= _s.Length;

    public readonly byte Peek => Pos < _s.Length ? _s[Pos] : throw Truncated();

    private static FormatException Truncated() => new("truncated MessagePack value");

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || Pos + n > _s.Length)
        {
            throw Truncated();
        }

        var r = _s.Slice(Pos, (int)n);
        Pos += (int)n;
        return r;
    }

    private byte Byte() => Take(1)[0];

    private ushort U16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    private uint U32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    /// <summary>A map header's entry count, or -1 (nothing consumed) when the next value is not a map.</summary>
    public int TryMap()
    {
        var b = Peek;
        if (b is >= 0x80 and <= 0x8f)
        {
            Pos++;
            return b & 0x0f;
        }

        if (b == 0xde)
        {
            Pos++;
            return U16();
        }

        if (b == 0xdf)
        {
            Pos++;
            return Checked(U32());
        }

        return -1;
    }

    /// <summary>An array header's element count, or -1 (nothing consumed) when the next value is not an array.</summary>
    public int TryArray()
    {
        var b = Peek;
        if (b is >= 0x90 and <= 0x9f)
        {
            Pos++;
            return b & 0x0f;
        }

        if (b == 0xdc)
        {
            Pos++;
            return U16();
        }

        if (b == 0xdd)
        {
            Pos++;
            return Checked(U32());
        }

        return -1;
    }

    private readonly int Checked(uint n) => n <= (uint)(_s.Length - Pos) ? (int)n : throw Truncated();

    /// <summary>The UTF-8 bytes of a string, or false (nothing consumed) when the next value is not a string.</summary>
    public bool TryStr(out ReadOnlySpan<byte> str)
    {
        var b = Peek;
        long n;
        if (b is >= 0xa0 and <= 0xbf)
        {
            Pos++;
            n = b & 0x1f;
        }
        else if (b == 0xd9)
        {
            Pos++;
            n = Byte();
        }
        else if (b == 0xda)
        {
            Pos++;
            n = U16();
        }
        else if (b == 0xdb)
        {
            Pos++;
            n = U32();
        }
        else
        {
            str = default;
            return false;
        }

        str = Take(n);
        return true;
    }

    /// <summary>
    /// A number (ints of every width, float32/64), or a string holding a decimal number; NaN for
    /// anything else. The value is consumed either way.
    /// </summary>
    public double Number()
    {
        var b = Peek;
        if (b <= 0x7f)
        {
            Pos++;
            return b;
        }

        if (b >= 0xe0)
        {
            Pos++;
            return (sbyte)b;
        }

        switch (b)
        {
            case 0xcc: Pos++; return Byte();
            case 0xcd: Pos++; return U16();
            case 0xce: Pos++; return U32();
            case 0xcf: Pos++; return BinaryPrimitives.ReadUInt64BigEndian(Take(8));
            case 0xd0: Pos++; return (sbyte)Byte();
            case 0xd1: Pos++; return (short)U16();
            case 0xd2: Pos++; return (int)U32();
            case 0xd3: Pos++; return BinaryPrimitives.ReadInt64BigEndian(Take(8));
            case 0xca: Pos++; return BinaryPrimitives.ReadSingleBigEndian(Take(4));
            case 0xcb: Pos++; return BinaryPrimitives.ReadDoubleBigEndian(Take(8));
            default:
                break;
        }

        if (TryStr(out var s))
        {
            return Utf8Parser.TryParse(s, out double d, out var used) && used == s.Length ? d : double.NaN;
        }

        Skip();
        return double.NaN;
    }

    /// <summary>Steps over one value of any type (nested containers included).</summary>
    public void Skip()
    {
        long pending = 1;
        while (pending > 0)
        {
            pending--;
            var b = Byte();
            if (b <= 0x7f || b >= 0xe0 || b is 0xc0 or 0xc2 or 0xc3)
            {
                continue;
            }

            if (b is >= 0x80 and <= 0x8f)
            {
                pending += 2 * (b & 0x0f);
                continue;
            }

            if (b is >= 0x90 and <= 0x9f)
            {
                pending += b & 0x0f;
                continue;
            }

            if (b is >= 0xa0 and <= 0xbf)
            {
                Take(b & 0x1f);
                continue;
            }

            switch (b)
            {
                case 0xc4 or 0xd9: Take(Byte()); break;
                case 0xc5 or 0xda: Take(U16()); break;
                case 0xc6 or 0xdb: Take(U32()); break;
                case 0xc7: Take(Byte() + 1L); break;
                case 0xc8: Take(U16() + 1L); break;
                case 0xc9: Take(U32() + 1L); break;
                case 0xca: Take(4); break;
                case 0xcb: Take(8); break;
                case 0xcc or 0xd0: Take(1); break;
                case 0xcd or 0xd1: Take(2); break;
                case 0xce or 0xd2: Take(4); break;
                case 0xcf or 0xd3: Take(8); break;
                case 0xd4: Take(2); break; // fixext 1 (notepack's undefined: d4 00 00)
                case 0xd5: Take(3); break;
                case 0xd6: Take(5); break;
                case 0xd7: Take(9); break;
                case 0xd8: Take(17); break;
                case 0xdc: pending += U16(); break;
                case 0xdd: pending += U32(); break;
                case 0xde: pending += 2L * U16(); break;
                case 0xdf: pending += 2L * U32(); break;
                default: throw new FormatException($"invalid MessagePack byte 0x{b:x2}");
            }

            if (pending > _s.Length)
            {
                throw Truncated();
            }
        }
    }

    /// <summary>A short JSON-like rendering of the next value (for error messages).</summary>
    public string Describe(int max = 160)
    {
        var sb = new StringBuilder();
        Describe(sb, max, 0);
        return sb.Length > max ? sb.ToString(0, max) : sb.ToString();
    }

    private void Describe(StringBuilder sb, int max, int depth)
    {
        if (sb.Length > max || depth > 8)
        {
            Skip();
            return;
        }

        if (TryStr(out var s))
        {
            sb.Append('"').Append(Encoding.UTF8.GetString(s)).Append('"');
            return;
        }

        var n = TryMap();
        if (n >= 0)
        {
            sb.Append('{');
            for (var i = 0; i < n; i++)
            {
                if (i > 0)
                {
                    sb.Append(',');
                }

                Describe(sb, max, depth + 1);
                sb.Append(':');
                Describe(sb, max, depth + 1);
            }

            sb.Append('}');
            return;
        }

        n = TryArray();
        if (n >= 0)
        {
            sb.Append('[');
            for (var i = 0; i < n; i++)
            {
                if (i > 0)
                {
                    sb.Append(',');
                }

                Describe(sb, max, depth + 1);
            }

            sb.Append(']');
            return;
        }

        switch (Peek)
        {
            case 0xc0: Pos++; sb.Append("null"); return;
            case 0xc2: Pos++; sb.Append("false"); return;
            case 0xc3: Pos++; sb.Append("true"); return;
            default: break;
        }

        var start = Pos;
        var d = Number();
        sb.Append(double.IsNaN(d) ? $"<{Pos - start} bytes>" : d.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>Builds one MessagePack message (the packets the load client sends; not on a hot path).</summary>
internal sealed class MsgPackWriter
{
    private readonly List<byte> _b = new(128);

    public byte[] ToArray() => [.. _b];

    public MsgPackWriter Map(int n)
    {
        if (n < 16)
        {
            _b.Add((byte)(0x80 | n));
        }
        else
        {
            _b.Add(0xdf);
            U32((uint)n);
        }

        return this;
    }

    public MsgPackWriter Array(int n)
    {
        if (n < 16)
        {
            _b.Add((byte)(0x90 | n));
        }
        else
        {
            _b.Add(0xdd);
            U32((uint)n);
        }

        return this;
    }

    public MsgPackWriter Str(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length < 32)
        {
            _b.Add((byte)(0xa0 | bytes.Length));
        }
        else if (bytes.Length <= byte.MaxValue)
        {
            _b.Add(0xd9);
            _b.Add((byte)bytes.Length);
        }
        else
        {
            _b.Add(0xdb);
            U32((uint)bytes.Length);
        }

        _b.AddRange(bytes);
        return this;
    }

    public MsgPackWriter Int(long v)
    {
        if (v is >= 0 and <= 0x7f)
        {
            _b.Add((byte)v);
        }
        else if (v is >= -32 and < 0)
        {
            _b.Add((byte)(sbyte)v);
        }
        else
        {
            _b.Add(0xd3);
            Span<byte> t = stackalloc byte[8];
            BinaryPrimitives.WriteInt64BigEndian(t, v);
            _b.AddRange(t);
        }

        return this;
    }

    public MsgPackWriter Double(double v)
    {
        _b.Add(0xcb);
        Span<byte> t = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleBigEndian(t, v);
        _b.AddRange(t);
        return this;
    }

    public MsgPackWriter Nil()
    {
        _b.Add(0xc0);
        return this;
    }

    public MsgPackWriter Bool(bool v)
    {
        _b.Add(v ? (byte)0xc3 : (byte)0xc2);
        return this;
    }

    /// <summary>A JSON value (an auth payload, an event argument) as MessagePack.</summary>
    public MsgPackWriter Json(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return Json(doc.RootElement);
    }

    public MsgPackWriter Json(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                Map(e.EnumerateObject().Count());
                foreach (var p in e.EnumerateObject())
                {
                    Str(p.Name).Json(p.Value);
                }

                return this;
            case JsonValueKind.Array:
                Array(e.GetArrayLength());
                foreach (var v in e.EnumerateArray())
                {
                    Json(v);
                }

                return this;
            case JsonValueKind.String:
                return Str(e.GetString()!);
            case JsonValueKind.Number:
                return e.TryGetInt64(out var l) ? Int(l) : Double(e.GetDouble());
            case JsonValueKind.True:
                return Bool(true);
            case JsonValueKind.False:
                return Bool(false);
            default:
                return Nil();
        }
    }

    /// <summary>The Socket.IO packet map {type, nsp, data?, id?}; <paramref name="data"/> writes the data value.</summary>
    public static byte[] Packet(int type, string nsp, Action<MsgPackWriter>? data, long? id)
    {
        var w = new MsgPackWriter();
        w.Map(2 + (data is null ? 0 : 1) + (id is null ? 0 : 1));
        w.Str("type").Int(type).Str("nsp").Str(nsp);
        if (data is not null)
        {
            w.Str("data");
            data(w);
        }

        if (id is { } ackId)
        {
            w.Str("id").Int(ackId);
        }

        return w.ToArray();
    }

    private void U32(uint v)
    {
        Span<byte> t = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(t, v);
        _b.AddRange(t);
    }
}
