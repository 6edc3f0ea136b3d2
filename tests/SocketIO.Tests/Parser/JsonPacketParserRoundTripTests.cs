using System.Text.Json;
using EngineIO;
using SocketIO.Parser;
using static SocketIO.Tests.Parser.ParserTestSupport;

namespace SocketIO.Tests.Parser;

/// <summary>Property tests: encode then decode random argument trees (seeded, reproducible).</summary>
public class JsonPacketParserRoundTripTests
{
    private const int Cases = 400;

    private static readonly string[] s_namespaces = ["/", "/admin", "/a/b/c", "/ns-ü-日本", "/with space", "/0123"];
    private static readonly string[] s_reserved = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

    private readonly JsonPacketParser _parser = new();

    public static TheoryData<int> Seeds()
    {
        var data = new TheoryData<int>();
        for (var seed = 0; seed < 8; seed++)
        {
            data.Add(seed);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_events_and_acks_round_trip(int seed)
    {
        var generator = new TreeGenerator(seed * 7919);
        var random = generator.Random;
        for (var i = 0; i < Cases / 8 * 2; i++)
        {
            var isAck = random.Next(3) == 0;
            var nsp = s_namespaces[random.Next(s_namespaces.Length)];
            long? id = random.Next(3) switch
            {
                0 => null,
                1 => random.Next(0, 1000),
                _ => random.NextInt64(0, 999_999_999_999_999),
            };
            if (!isAck && random.Next(2) == 0)
            {
                id = null;
            }

            var args = new List<object?>();
            if (!isAck)
            {
                args.Add(EventName(generator));
            }

            args.AddRange(generator.List(random.Next(0, 5)));
            if (random.Next(4) == 0)
            {
                args.Add(generator.Bytes());
            }

            var data = args.ToArray();
            var context = $"seed {seed} case {i}";
            var type = isAck ? SocketPacketType.Ack : SocketPacketType.Event;
            var encoded = _parser.Encode(type, nsp, id, data, isVolatile: random.Next(2) == 0);
            var binaries = CountBinaries(data);

            Assert.True(encoded.Messages.Length == 1 + binaries, $"{context}: {encoded.Messages.Length} messages for {binaries} binaries");
            Assert.False(encoded.Messages[0].IsBinary, context);
            Assert.All(encoded.Messages.Skip(1), m => Assert.True(m.IsBinary, context));
            var text = FrameText(encoded.Messages[0]);
            var expectedType = binaries == 0 ? type : isAck ? SocketPacketType.BinaryAck : SocketPacketType.BinaryEvent;
            var header = "4" + (int)expectedType + (binaries > 0 ? $"{binaries}-" : string.Empty) + (nsp == "/" ? string.Empty : nsp + ",") + id;
            Assert.True(text.StartsWith(header + "[", StringComparison.Ordinal), $"{context}: {text}");

            var packet = DecodeAll(_parser, encoded.Messages);
            Assert.Equal(expectedType, packet.Type);
            Assert.Equal(nsp, packet.Namespace);
            Assert.Equal(id, packet.Id);
            Assert.Equal(binaries, packet.Attachments.Count);
            Assert.NotNull(packet.Data);
            AssertTree(data, packet.Data.Value, packet.Attachments, context);
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Random_connect_and_connect_error_round_trip(int seed)
    {
        var generator = new TreeGenerator(seed + 1000);
        var random = generator.Random;
        for (var i = 0; i < 25; i++)
        {
            var nsp = s_namespaces[random.Next(s_namespaces.Length)];
            var auth = random.Next(4) == 0 ? null : WithoutBinary(generator.Map(3));
            var packet = DecodeAll(_parser, _parser.Encode(SocketPacketType.Connect, nsp, null, auth).Messages);
            Assert.Equal(SocketPacketType.Connect, packet.Type);
            Assert.Equal(nsp, packet.Namespace);
            if (auth is null)
            {
                Assert.Null(packet.Data);
            }
            else
            {
                AssertTree(auth, packet.Data!.Value, packet.Attachments);
            }

            var error = new Dictionary<string, object?> { ["message"] = generator.String(), ["data"] = WithoutBinary(generator.Value(3)) };
            packet = DecodeAll(_parser, _parser.Encode(SocketPacketType.ConnectError, nsp, null, error).Messages);
            Assert.Equal(SocketPacketType.ConnectError, packet.Type);
            Assert.Equal(nsp, packet.Namespace);
            AssertTree(error, packet.Data!.Value, packet.Attachments);

            packet = DecodeAll(_parser, _parser.Encode(SocketPacketType.Disconnect, nsp, null, null).Messages);
            Assert.Equal(SocketPacketType.Disconnect, packet.Type);
            Assert.Equal(nsp, packet.Namespace);
            Assert.Null(packet.Data);
        }
    }

    [Fact]
    public void Binary_at_every_depth_round_trips_with_placeholders_in_order()
    {
        var leaf = new byte[] { 0xde, 0xad, 0xbe, 0xef };
        object? value = leaf;
        var expectedOrder = new List<byte[]> { leaf };
        for (var depth = 0; depth < 20; depth++)
        {
            var extra = new byte[] { (byte)depth };
            expectedOrder.Insert(0, extra);
            value = depth % 2 == 0
                ? new List<object?> { extra, value }
                : new Dictionary<string, object?> { ["a"] = extra, ["b"] = value };
        }

        var parser = new JsonPacketParser(maxAttachments: 64);
        var data = new object?[] { "deep", value };
        var encoded = parser.Encode(SocketPacketType.Event, "/", null, data);
        Assert.Equal(22, encoded.Messages.Length);
        for (var i = 0; i < expectedOrder.Count; i++)
        {
            Assert.Equal(expectedOrder[i], encoded.Messages[i + 1].Data.ToArray());
        }

        var packet = DecodeAll(parser, encoded.Messages);
        AssertTree(data, packet.Data!.Value, packet.Attachments);
    }

    [Fact]
    public void Same_buffer_twice_gives_two_attachments()
    {
        var buffer = new byte[] { 1, 2, 3 };
        var encoded = _parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "twice", buffer, buffer });
        Assert.Equal("452-[\"twice\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", FrameText(encoded.Messages[0]));
        var packet = DecodeAll(_parser, encoded.Messages);
        Assert.Equal(2, packet.Attachments.Count);
    }

    [Fact]
    public void Empty_binary_round_trips()
    {
        var encoded = _parser.Encode(SocketPacketType.Event, "/", 1, new object?[] { "empty", Array.Empty<byte>() });
        Assert.Equal(2, encoded.Messages.Length);
        Assert.Equal(0, encoded.Messages[1].Frame.Length);
        var packet = DecodeAll(_parser, encoded.Messages);
        Assert.Equal(0, packet.Attachments[0].Length);
    }

    [Fact]
    public void Unicode_strings_survive_byte_exactly()
    {
        var value = "日本語 😀 \u2028 \"q\" \\ / \u0000 é";
        var encoded = _parser.Encode(SocketPacketType.Event, "/", null, new object?[] { value, value });
        var packet = DecodeAll(_parser, encoded.Messages);
        Assert.Equal(value, packet.Data!.Value[0].GetString());
        Assert.Equal(value, packet.Data.Value[1].GetString());
    }

    [Fact]
    public void Decoded_packets_re_encode_to_the_same_bytes()
    {
        var generator = new TreeGenerator(4242);
        for (var i = 0; i < 100; i++)
        {
            var data = WithoutBinary(new List<object?> { EventName(generator) }.Concat(generator.List(3)).ToList());
            var first = _parser.Encode(SocketPacketType.Event, "/admin", i, data);
            var packet = DecodeAll(_parser, first.Messages);
            var second = _parser.Encode(packet.Type, packet.Namespace, packet.Id, packet.Data);
            Assert.Equal(FrameText(first.Messages[0]), FrameText(second.Messages[0]));
        }
    }

    [Fact]
    public void Many_decoders_interleaved_keep_their_own_state()
    {
        var generator = new TreeGenerator(99);
        var decoders = Enumerable.Range(0, 5).Select(_ => _parser.CreateDecoder()).ToArray();
        var queues = new Queue<EngineMessage>[decoders.Length];
        var expected = new Queue<object?[]>[decoders.Length];
        for (var d = 0; d < decoders.Length; d++)
        {
            queues[d] = new Queue<EngineMessage>();
            expected[d] = new Queue<object?[]>();
            for (var p = 0; p < 20; p++)
            {
                var data = new object?[] { "e", generator.Bytes(), generator.Value(2), generator.Bytes() };
                expected[d].Enqueue(data);
                foreach (var message in _parser.Encode(SocketPacketType.Event, "/", null, data).Messages)
                {
                    queues[d].Enqueue(message);
                }
            }
        }

        var random = new Random(5);
        while (queues.Any(q => q.Count > 0))
        {
            var d = random.Next(decoders.Length);
            if (queues[d].Count == 0)
            {
                continue;
            }

            var status = decoders[d].Decode(queues[d].Dequeue(), out var packet, out var error);
            Assert.NotEqual(DecodeStatus.Error, status);
            if (status == DecodeStatus.Complete)
            {
                Assert.Null(error);
                AssertTree(expected[d].Dequeue(), packet!.Data!.Value, packet.Attachments);
            }
        }

        Assert.All(expected, q => Assert.Empty(q));
    }

    [Fact]
    public async Task Concurrent_encoding_on_many_threads_is_consistent()
    {
        var tasks = Enumerable.Range(0, 8).Select(t => Task.Run(() =>
        {
            var generator = new TreeGenerator(t);
            for (var i = 0; i < 200; i++)
            {
                var data = new object?[] { "t" + t, generator.Value(3), generator.Bytes() };
                var packet = DecodeAll(_parser, _parser.Encode(SocketPacketType.Event, "/", i, data).Messages);
                AssertTree(data, packet.Data!.Value, packet.Attachments);
                Assert.Equal(i, packet.Id);
            }
        }));
        await Task.WhenAll(tasks);
    }

    [Fact]
    public void Encoding_with_different_encoders_on_one_thread_uses_each_parsers_encoder()
    {
        // The writer is cached per thread; each parser must still write with its own options.
        var escaping = new JsonPacketParser();
        var relaxed = new JsonPacketParser(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        string Write(JsonPacketParser parser) => FrameText(parser.Encode(SocketPacketType.Event, "/", null, new object?[] { "é<" }).Messages[0]);

        // Both orders, so the outcome does not depend on which parser first used this thread.
        var results = new[] { Write(relaxed), Write(escaping), Write(relaxed), Write(escaping) };
        Assert.Equal(["42[\"é<\"]", "42[\"\\u00E9\\u003C\"]", "42[\"é<\"]", "42[\"\\u00E9\\u003C\"]"], results);
    }

    private static object EventName(TreeGenerator generator)
    {
        if (generator.Random.Next(10) == 0)
        {
            return (long)generator.Random.Next(0, 100);
        }

        var name = generator.String();
        return Array.IndexOf(s_reserved, name) >= 0 ? name + "!" : name;
    }

    /// <summary>Outside EVENT/ACK packets binary is written as base64; keep those trees binary-free.</summary>
    private static T WithoutBinary<T>(T value) => (T)Strip(value)!;

    private static object? Strip(object? value) => value switch
    {
        byte[] bytes => Convert.ToBase64String(bytes),
        List<object?> list => list.Select(Strip).ToList(),
        Dictionary<string, object?> map => map.ToDictionary(p => p.Key, p => Strip(p.Value), StringComparer.Ordinal),
        _ => value,
    };
}
