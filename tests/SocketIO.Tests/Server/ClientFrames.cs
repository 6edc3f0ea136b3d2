using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SocketIO.Tests.Server;

/// <summary>WebSocket frames as a client sends them (RFC 6455: final, masked), for raw TCP test clients.</summary>
internal static class ClientFrames
{
    /// <summary>One final, masked client frame with a random masking key.</summary>
    public static byte[] Masked(int opcode, byte[] payload) => Frame(0x80 | opcode, payload);

    /// <summary>A client frame with the given first byte (FIN, RSV bits, opcode), masked unless told otherwise.</summary>
    public static byte[] Frame(int first, byte[] payload, bool masked = true)
    {
        var headerLength = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var maskLength = masked ? 4 : 0;
        var frame = new byte[headerLength + maskLength + payload.Length];
        frame[0] = (byte)first;
        var maskBit = masked ? 0x80 : 0;
        if (headerLength == 2)
        {
            frame[1] = (byte)(maskBit | payload.Length);
        }
        else if (headerLength == 4)
        {
            frame[1] = (byte)(maskBit | 126);
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        else
        {
            frame[1] = (byte)(maskBit | 127);
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
        }

        if (!masked)
        {
            payload.CopyTo(frame, headerLength);
            return frame;
        }

        var mask = RandomNumberGenerator.GetBytes(4);
        mask.CopyTo(frame, headerLength);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[headerLength + 4 + i] = (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }
}
