using System.Globalization;
using System.Text;
using System.Text.Json;
using EngineIO;
using SocketIO.Parser;

namespace SocketIO.Tests.Parser;

/// <summary>Helpers shared by the parser tests: decoding sequences, frames as text, value trees.</summary>
internal static class ParserTestSupport
{
    public static string FrameText(EngineMessage message) => Encoding.UTF8.GetString(message.Frame.Span);

    public static string DataText(EngineMessage message) => Encoding.UTF8.GetString(message.Data.Span);

    /// <summary>Feeds every message to a fresh decoder; all but the last must need more, the last must complete.</summary>
    public static SocketPacket DecodeAll(JsonPacketParser parser, IReadOnlyList<EngineMessage> messages)
    {
        var decoder = parser.CreateDecoder();
        for (var i = 0; i < messages.Count - 1; i++)
        {
            var status = decoder.Decode(messages[i], out var partial, out var partialError);
            Assert.True(status == DecodeStatus.NeedMore, $"message {i}: expected NeedMore, got {status} ({partialError})");
            Assert.Null(partial);
        }

        var last = decoder.Decode(messages[^1], out var packet, out var error);
        Assert.True(last == DecodeStatus.Complete, $"last message: expected Complete, got {last} ({error})");
        Assert.NotNull(packet);
        Assert.Null(error);
        return packet;
    }

    /// <summary>Decodes one text packet (body without the Engine.IO "4").</summary>
    public static DecodeStatus DecodeText(string text, out SocketPacket? packet, out string? error) =>
        new JsonPacketParser().CreateDecoder().Decode(EngineMessage.Text(text), out packet, out error);

    /// <summary>
    /// Asserts a decoded JSON value (with its attachments) matches an expected value tree made of
    /// null, bool, long, double, string, byte[], List&lt;object?&gt; and Dictionary&lt;string, object?&gt;.
    /// </summary>
    public static void AssertTree(object? expected, JsonElement actual, IReadOnlyList<ReadOnlyMemory<byte>> attachments, string path = "$")
    {
        switch (expected)
        {
            case null:
                Assert.True(actual.ValueKind == JsonValueKind.Null, $"{path}: expected null, got {actual.ValueKind}");
                break;
            case bool b:
                Assert.True(actual.ValueKind == (b ? JsonValueKind.True : JsonValueKind.False), $"{path}: expected {b}, got {actual.ValueKind}");
                break;
            case long l:
                Assert.True(actual.ValueKind == JsonValueKind.Number && actual.TryGetInt64(out var lv) && lv == l, $"{path}: expected {l}, got {actual.GetRawText()}");
                break;
            case double d:
                Assert.True(actual.ValueKind == JsonValueKind.Number, $"{path}: expected number, got {actual.ValueKind}");
                Assert.True(actual.GetDouble().Equals(d), $"{path}: expected {d.ToString("R", CultureInfo.InvariantCulture)}, got {actual.GetRawText()}");
                break;
            case string s:
                Assert.True(actual.ValueKind == JsonValueKind.String, $"{path}: expected string, got {actual.ValueKind}");
                Assert.Equal(s, actual.GetString());
                break;
            case byte[] bytes:
                Assert.True(IsPlaceholder(actual, out var num), $"{path}: expected a placeholder, got {actual.GetRawText()}");
                Assert.InRange(num, 0, attachments.Count - 1);
                Assert.Equal(bytes, attachments[num].ToArray());
                break;
            case List<object?> list:
                Assert.True(actual.ValueKind == JsonValueKind.Array, $"{path}: expected array, got {actual.ValueKind}");
                Assert.Equal(list.Count, actual.GetArrayLength());
                for (var i = 0; i < list.Count; i++)
                {
                    AssertTree(list[i], actual[i], attachments, $"{path}[{i}]");
                }

                break;
            case object?[] array:
                AssertTree(array.ToList(), actual, attachments, path);
                break;
            case Dictionary<string, object?> map:
                Assert.True(actual.ValueKind == JsonValueKind.Object, $"{path}: expected object, got {actual.ValueKind}");
                var names = actual.EnumerateObject().Select(p => p.Name).ToList();
                Assert.Equal(map.Keys.Order(StringComparer.Ordinal), names.Order(StringComparer.Ordinal));
                foreach (var (key, value) in map)
                {
                    AssertTree(value, actual.GetProperty(key), attachments, $"{path}.{key}");
                }

                break;
            default:
                throw new InvalidOperationException($"unsupported expected value {expected.GetType()}");
        }
    }

    /// <summary>The reference parser's rule: an object whose <c>_placeholder</c> is <c>true</c>.</summary>
    public static bool IsPlaceholder(JsonElement element, out int num)
    {
        num = -1;
        return element.ValueKind == JsonValueKind.Object
            && element.TryGetProperty("_placeholder", out var flag) && flag.ValueKind == JsonValueKind.True
            && element.TryGetProperty("num", out var n) && n.TryGetInt32(out num);
    }

    public static int CountBinaries(object? value) => value switch
    {
        byte[] => 1,
        List<object?> list => list.Sum(CountBinaries),
        object?[] array => array.Sum(CountBinaries),
        Dictionary<string, object?> map => map.Values.Sum(CountBinaries),
        _ => 0,
    };
}

/// <summary>Random argument trees from a seeded <see cref="Random"/>.</summary>
internal sealed class TreeGenerator(int seed)
{
    private static readonly string[] s_samples =
    [
        "", "hello", "agent:status:update", "héllo wörld", "日本語テキスト", "emoji 😀🚀", "quote \" backslash \\ slash /",
        "control \u0001\u001f\t\n\r", "<script>&amp;</script>", "+1234", "_placeholder", "num", "\u2028\u2029", "Ω≈ç√∫",
    ];

    private readonly Random _random = new(seed);

    public Random Random => _random;

    public object? Value(int depth)
    {
        var kind = _random.Next(depth <= 0 ? 7 : 9);
        return kind switch
        {
            0 => null,
            1 => _random.Next(2) == 0,
            2 => Integer(),
            3 => Double(),
            4 or 5 => String(),
            6 => Bytes(),
            7 => List(depth - 1),
            _ => Map(depth - 1),
        };
    }

    public List<object?> List(int depth)
    {
        var count = _random.Next(0, 5);
        var list = new List<object?>(count);
        for (var i = 0; i < count; i++)
        {
            list.Add(Value(depth));
        }

        return list;
    }

    public Dictionary<string, object?> Map(int depth)
    {
        var count = _random.Next(0, 5);
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        for (var i = 0; i < count; i++)
        {
            var key = String();
            if (key == "_placeholder")
            {
                key = "not_placeholder";
            }

            map[key] = Value(depth);
        }

        return map;
    }

    public long Integer() => _random.Next(4) switch
    {
        0 => _random.Next(-10, 10),
        1 => _random.NextInt64(-9_007_199_254_740_991, 9_007_199_254_740_991),
        2 => _random.Next(),
        _ => long.MaxValue - _random.Next(1000),
    };

    public double Double() => _random.Next(3) switch
    {
        0 => _random.NextDouble(),
        1 => (_random.NextDouble() - 0.5) * Math.Pow(10, _random.Next(-300, 300)),
        _ => Math.Round(_random.NextDouble() * 1000, 2) + 0.5,
    };

    public string String()
    {
        if (_random.Next(3) > 0)
        {
            return s_samples[_random.Next(s_samples.Length)];
        }

        var length = _random.Next(0, 24);
        var builder = new StringBuilder(length);
        for (var i = 0; i < length; i++)
        {
            switch (_random.Next(5))
            {
                case 0:
                    builder.Append((char)_random.Next(0x20, 0x7f));
                    break;
                case 1:
                    builder.Append((char)_random.Next(0x00, 0x20));
                    break;
                case 2:
                    builder.Append((char)_random.Next(0xa0, 0xd7ff));
                    break;
                case 3:
                    builder.Append(char.ConvertFromUtf32(_random.Next(0x10000, 0x10ffff)));
                    break;
                default:
                    builder.Append("\"\\/,-[]{}"[_random.Next(9)]);
                    break;
            }
        }

        return builder.ToString();
    }

    public byte[] Bytes()
    {
        var bytes = new byte[_random.Next(4) == 0 ? 0 : _random.Next(1, 300)];
        _random.NextBytes(bytes);
        return bytes;
    }
}
