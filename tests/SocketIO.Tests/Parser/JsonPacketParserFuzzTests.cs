using System.Text;
using EngineIO;
using SocketIO.Parser;

namespace SocketIO.Tests.Parser;

/// <summary>
/// Randomized fuzzing (seeded, reproducible): the decoder must never throw, and its outputs must be
/// consistent with its status. Failures list every distinct exception with a sample input.
/// </summary>
public class JsonPacketParserFuzzTests
{
    private static readonly byte[] s_alphabet = Encoding.ASCII.GetBytes("0123456789-/,[]{}\":_ntrufalsepchodemx.\\ ");

    private static readonly string[] s_fragments =
    [
        "{\"_placeholder\":true,\"num\":0}", "{\"_placeholder\":true,\"num\":", "\"_placeholder\"", "true", "false", "null",
        "[", "]", "{", "}", "\"", ",", "-", "/admin,", "123", "9999999999999999", "\"connect\"", "\\u0000", "\\ud800", "1e999", "-0",
    ];

    private readonly JsonPacketParser _parser = new(maxAttachments: 4);

    [Fact]
    public void Random_protocol_alphabet_strings_never_throw()
    {
        var random = new Random(20240601);
        var failures = new Failures();
        for (var i = 0; i < 20_000; i++)
        {
            var length = random.Next(0, 48);
            var bytes = new byte[length];
            for (var j = 0; j < length; j++)
            {
                bytes[j] = s_alphabet[random.Next(s_alphabet.Length)];
            }

            if (length > 0 && random.Next(2) == 0)
            {
                bytes[0] = (byte)('0' + random.Next(7));
            }

            Feed(random, bytes, failures);
        }

        failures.AssertNone();
    }

    [Fact]
    public void Random_ascii_fragment_sequences_never_throw()
    {
        var random = new Random(77);
        var failures = new Failures();
        for (var i = 0; i < 10_000; i++)
        {
            var builder = new StringBuilder();
            builder.Append((char)('0' + random.Next(8)));
            var count = random.Next(0, 10);
            for (var j = 0; j < count; j++)
            {
                builder.Append(s_fragments[random.Next(s_fragments.Length)]);
            }

            Feed(random, Encoding.ASCII.GetBytes(builder.ToString()), failures);
        }

        failures.AssertNone();
    }

    [Fact]
    public void Mutated_valid_packets_never_throw()
    {
        var generator = new TreeGenerator(31337);
        var random = generator.Random;
        var failures = new Failures();
        for (var i = 0; i < 3_000; i++)
        {
            var data = new object?[] { "ev-" + i, generator.Value(3), generator.Bytes() };
            var type = random.Next(2) == 0 ? SocketPacketType.Event : SocketPacketType.Ack;
            var encoded = _parser.Encode(type, random.Next(2) == 0 ? "/" : "/admin", random.Next(2) == 0 ? null : random.Next(), data);
            var text = encoded.Messages[0].Data.ToArray();
            for (var m = 0; m < 5; m++)
            {
                var mutated = Mutate(random, text);
                Feed(random, mutated, failures, encoded.Messages.Skip(1).ToList());
            }
        }

        failures.AssertNone();
    }

    [Fact]
    public void Random_raw_bytes_never_throw()
    {
        var random = new Random(4711);
        var failures = new Failures();
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = new byte[random.Next(0, 40)];
            random.NextBytes(bytes);
            if (bytes.Length > 2 && random.Next(2) == 0)
            {
                // keep a plausible prefix so the fuzzing reaches the JSON and validation stages
                bytes[0] = (byte)('0' + random.Next(7));
                bytes[1] = (byte)'[';
                bytes[2] = (byte)'"';
            }

            Feed(random, bytes, failures);
        }

        failures.AssertNone();
    }

    [Fact]
    public void Random_message_sequences_keep_decoder_consistent()
    {
        var random = new Random(8080);
        var failures = new Failures();
        string[] texts =
        [
            "2[\"a\"]", "51-[\"a\",{\"_placeholder\":true,\"num\":0}]", "62-[{\"_placeholder\":true,\"num\":1},{\"_placeholder\":true,\"num\":0}]",
            "53-[\"a\",{\"_placeholder\":true,\"num\":2}]", "50-[\"a\"]", "0", "1", "3[]", "x", "54-[\"a\"]", "55-[\"a\"]",
        ];
        for (var i = 0; i < 2_000; i++)
        {
            var decoder = _parser.CreateDecoder();
            var steps = random.Next(1, 12);
            var trace = new List<string>();
            for (var s = 0; s < steps; s++)
            {
                var message = random.Next(2) == 0
                    ? EngineMessage.Text(texts[random.Next(texts.Length)])
                    : EngineMessage.Binary(new byte[random.Next(0, 4)]);
                trace.Add(message.ToString());
                try
                {
                    var status = decoder.Decode(message, out var packet, out var error);
                    CheckConsistency(status, packet, error);
                    if (status == DecodeStatus.Error)
                    {
                        break;
                    }
                }
                catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
                {
                    failures.Add(ex, string.Join(" | ", trace));
                    break;
                }
            }
        }

        failures.AssertNone();
    }

    private void Feed(Random random, byte[] text, Failures failures, IReadOnlyList<EngineMessage>? attachments = null)
    {
        var decoder = _parser.CreateDecoder();
        try
        {
            var status = decoder.Decode(EngineMessage.Text(text), out var packet, out var error);
            CheckConsistency(status, packet, error);
            var extra = attachments is { Count: > 0 } ? attachments.Count + random.Next(-1, 2) : random.Next(0, 2);
            for (var k = 0; k < extra && status == DecodeStatus.NeedMore; k++)
            {
                var binary = attachments is { Count: > 0 } ? attachments[k % attachments.Count] : EngineMessage.Binary(new byte[] { 1 });
                status = decoder.Decode(binary, out packet, out error);
                CheckConsistency(status, packet, error);
            }
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            failures.Add(ex, Describe(text));
        }
    }

    private static void CheckConsistency(DecodeStatus status, SocketPacket? packet, string? error)
    {
        switch (status)
        {
            case DecodeStatus.Complete:
                Assert.NotNull(packet);
                Assert.Null(error);
                Assert.True(packet.Namespace.Length > 0 && packet.Namespace[0] == '/', $"namespace {packet.Namespace}");
                Assert.True(packet.Id is null or >= 0, $"id {packet.Id}");
                break;
            case DecodeStatus.NeedMore:
                Assert.Null(packet);
                Assert.Null(error);
                break;
            case DecodeStatus.Error:
                Assert.Null(packet);
                Assert.False(string.IsNullOrEmpty(error));
                break;
            default:
                Assert.Fail($"undefined status {status}");
                break;
        }
    }

    private static byte[] Mutate(Random random, byte[] text)
    {
        var list = new List<byte>(text);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits; e++)
        {
            var position = list.Count == 0 ? 0 : random.Next(list.Count);
            switch (random.Next(6))
            {
                case 0 when list.Count > 0:
                    list[position] = s_alphabet[random.Next(s_alphabet.Length)];
                    break;
                case 1 when list.Count > 0:
                    list.RemoveAt(position);
                    break;
                case 2:
                    list.Insert(position, s_alphabet[random.Next(s_alphabet.Length)]);
                    break;
                case 3:
                    list.RemoveRange(position, list.Count - position);
                    break;
                case 4:
                    list.InsertRange(position, Encoding.ASCII.GetBytes(s_fragments[random.Next(s_fragments.Length)]));
                    break;
                default:
                    if (list.Count > 0)
                    {
                        list[position] ^= (byte)(1 << random.Next(8));
                    }

                    break;
            }
        }

        return [.. list];
    }

    private static string Describe(byte[] bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        return $"\"{text}\" (hex {Convert.ToHexString(bytes)})";
    }

    private sealed class Failures
    {
        private readonly Dictionary<string, (int Count, string Sample)> _byKind = new(StringComparer.Ordinal);

        public void Add(Exception exception, string input)
        {
            var key = exception.GetType().Name + ": " + exception.Message + " @ " + exception.StackTrace?.Split('\n').FirstOrDefault()?.Trim();
            _byKind[key] = _byKind.TryGetValue(key, out var existing) ? (existing.Count + 1, existing.Sample) : (1, input);
        }

        public void AssertNone() =>
            Assert.True(
                _byKind.Count == 0,
                "Decoder threw:\n" + string.Join("\n", _byKind.Select(p => $"{p.Value.Count}x {p.Key}\n    e.g. {p.Value.Sample}")));
    }
}
