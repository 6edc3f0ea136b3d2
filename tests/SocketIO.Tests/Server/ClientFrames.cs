using System.Buffers.Binary;
using System.Security.Cryptography;

namespace SocketIO.Tests.Server;

/// <summary>WebSocket frames as a client sends them (RFC 6455: final, masked), for raw TCP test clients.</summary>
internal static class ClientFrames
{
    /// <summary>One final, masked client frame with a random masking key.</summary>
    public static byte[] Masked(int opcode, byte[] payload)
    {
        var headerLength = payload.Length < 126 ? 2 : payload.Length <= ushort.MaxValue ? 4 : 10;
        var frame = new byte[headerLength + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        if (headerLength == 2)
        {
            frame[1] = (byte)(0x80 | payload.Length);
        }
        else if (headerLength == 4)
        {
            frame[1] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)payload.Length);
        }
        else
        {
            frame[1] = 0x80 | 127;
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)payload.Length);
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
