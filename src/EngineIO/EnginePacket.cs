using System.Text;

namespace EngineIO;

/// <summary>Engine.IO packet types (the first character of a text packet).</summary>
public enum EnginePacketType : byte
{
    /// <summary>Handshake data sent by the server ("0").</summary>
    Open = (byte)'0',
    /// <summary>Closes the session ("1").</summary>
    Close = (byte)'1',
    /// <summary>Answer to a ping ("3").</summary>
    Ping = (byte)'2',
    /// <summary>Application data ("4").</summary>
    Pong = (byte)'3',
    /// <summary>Completes a transport upgrade ("5").</summary>
    Message = (byte)'4',
    /// <summary>Tells a polling client to close its pending request during an upgrade ("6").</summary>
    Upgrade = (byte)'5',
    /// <summary>Unused by Engine.IO v4 ("7").</summary>
    Noop = (byte)'6',
}

/// <summary>
/// An encoded Engine.IO packet, immutable and shareable: a broadcast builds one and hands the
/// same instance to every session. Text packets hold their UTF-8 bytes including the type
/// character (exactly the WebSocket frame); binary packets are message packets holding raw bytes.
/// </summary>
public sealed class EngineMessage
{
    internal static readonly EngineMessage Ping = Control("2");
    internal static readonly EngineMessage Noop = Control("6");
    internal static readonly EngineMessage ClosePacket = Control("1");
    internal static readonly EngineMessage PongProbe = Control("3probe");

    private EngineMessage(ReadOnlyMemory<byte> frame, bool isBinary, bool isVolatile)
    {
        Frame = frame;
        IsBinary = isBinary;
        IsVolatile = isVolatile;
    }

    /// <summary>True for a binary message, false for a text packet.</summary>
    public bool IsBinary { get; }

    /// <summary>Volatile messages are dropped rather than queued when the session is backed up.</summary>
    public bool IsVolatile { get; }

    /// <summary>What goes on a WebSocket: "4..." for text, the raw bytes for binary.</summary>
    public ReadOnlyMemory<byte> Frame { get; }

    /// <summary>The message body: the text after the type character, or the binary bytes.</summary>
    public ReadOnlyMemory<byte> Data => IsBinary ? Frame : Frame[1..];

    internal EnginePacketType Type => IsBinary ? EnginePacketType.Message : (EnginePacketType)Frame.Span[0];

    /// <summary>A text message packet ("4" + text).</summary>
    public static EngineMessage Text(string text, bool isVolatile = false)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        bytes[0] = (byte)EnginePacketType.Message;
        Encoding.UTF8.GetBytes(text, bytes.AsSpan(1));
        return new EngineMessage(bytes, false, isVolatile);
    }

    /// <summary>A text message packet from UTF-8 bytes (copied once, prefixed with "4").</summary>
    public static EngineMessage Text(ReadOnlySpan<byte> utf8, bool isVolatile = false)
    {
        var bytes = new byte[utf8.Length + 1];
        bytes[0] = (byte)EnginePacketType.Message;
        utf8.CopyTo(bytes.AsSpan(1));
        return new EngineMessage(bytes, false, isVolatile);
    }

    /// <summary>A text message packet from a frame the caller built, starting with "4"; not copied.</summary>
    public static EngineMessage TextFrame(byte[] frame, bool isVolatile = false)
    {
        ArgumentNullException.ThrowIfNull(frame);
        if (frame.Length == 0 || frame[0] != (byte)EnginePacketType.Message)
        {
            throw new ArgumentException("A message frame starts with '4'.", nameof(frame));
        }

        return new EngineMessage(frame, false, isVolatile);
    }

    /// <summary>A binary message packet; the bytes are not copied and must not change afterwards.</summary>
    public static EngineMessage Binary(ReadOnlyMemory<byte> data, bool isVolatile = false) => new(data, true, isVolatile);

    /// <summary>Wraps a received text packet, bytes including its type character.</summary>
    internal static EngineMessage FromTextFrame(ReadOnlyMemory<byte> frame) => new(frame, false, false);

    internal static EngineMessage Control(string packet) => new(Encoding.UTF8.GetBytes(packet), false, false);

    /// <summary>The text, or the length of a binary message.</summary>
    public override string ToString() => IsBinary ? $"<binary {Frame.Length} bytes>" : Encoding.UTF8.GetString(Frame.Span);
}
