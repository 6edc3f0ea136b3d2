using System.Buffers;
using System.Buffers.Text;

namespace EngineIO;

/// <summary>
/// The HTTP long-polling payload: packets separated by the record separator 0x1E, binary
/// packets as "b" + base64.
/// </summary>
internal static class PollingPayload
{
    public const byte Separator = 0x1E;

    public static void Encode(IReadOnlyList<EngineMessage> packets, IBufferWriter<byte> output)
    {
        for (var i = 0; i < packets.Count; i++)
        {
            if (i > 0)
            {
                output.GetSpan(1)[0] = Separator;
                output.Advance(1);
            }

            var packet = packets[i];
            if (packet.IsBinary)
            {
                var data = packet.Frame.Span;
                var length = Base64.GetMaxEncodedToUtf8Length(data.Length) + 1;
                var span = output.GetSpan(length);
                span[0] = (byte)'b';
                Base64.EncodeToUtf8(data, span[1..], out _, out var written);
                output.Advance(written + 1);
            }
            else
            {
                var frame = packet.Frame.Span;
                frame.CopyTo(output.GetSpan(frame.Length));
                output.Advance(frame.Length);
            }
        }
    }

    /// <summary>Splits a received payload into packets; false when any packet is malformed.</summary>
    public static bool TryDecode(ReadOnlyMemory<byte> payload, List<EngineMessage> packets)
    {
        var rest = payload;
        while (true)
        {
            var index = rest.Span.IndexOf(Separator);
            var part = index < 0 ? rest : rest[..index];
            if (!TryDecodePacket(part, out var packet))
            {
                return false;
            }

            packets.Add(packet);
            if (index < 0)
            {
                return true;
            }

            rest = rest[(index + 1)..];
        }
    }

    private static bool TryDecodePacket(ReadOnlyMemory<byte> part, out EngineMessage packet)
    {
        packet = null!;
        if (part.IsEmpty)
        {
            return false;
        }

        if (part.Span[0] == (byte)'b')
        {
            var encoded = part.Span[1..];
            var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(encoded.Length)];
            if (Base64.DecodeFromUtf8(encoded, bytes, out _, out var written) != OperationStatus.Done)
            {
                return false;
            }

            packet = EngineMessage.Binary(bytes.AsMemory(0, written));
            return true;
        }

        if (!EngineSession.IsValidTextPacketType(part.Span[0]))
        {
            return false;
        }

        packet = EngineMessage.FromTextFrame(part);
        return true;
    }
}
