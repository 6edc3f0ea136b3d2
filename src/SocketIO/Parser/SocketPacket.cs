using System.Text.Json;
using EngineIO;

namespace SocketIO.Parser;

/// <summary>Socket.IO v5 packet types.</summary>
public enum SocketPacketType
{
    /// <summary>Joins a namespace.</summary>
    Connect = 0,
    /// <summary>Leaves a namespace.</summary>
    Disconnect = 1,
    /// <summary>An event.</summary>
    Event = 2,
    /// <summary>An acknowledgement.</summary>
    Ack = 3,
    /// <summary>A refused namespace connection.</summary>
    ConnectError = 4,
    /// <summary>An event with binary attachments.</summary>
    BinaryEvent = 5,
    /// <summary>An acknowledgement with binary attachments.</summary>
    BinaryAck = 6,
}

/// <summary>A decoded Socket.IO packet, attachments already matched to its placeholders.</summary>
public sealed class SocketPacket
{
    /// <summary>The packet type.</summary>
    public required SocketPacketType Type { get; init; }

    /// <summary>The namespace it belongs to.</summary>
    public string Namespace { get; init; } = "/";

    /// <summary>The ack id, if the packet carries one.</summary>
    public long? Id { get; init; }

    /// <summary>The JSON payload, if any (binary parts are placeholders).</summary>
    public JsonElement? Data { get; init; }

    /// <summary>Binary attachments, in placeholder order.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Attachments { get; init; } = [];
}

/// <summary>
/// An encoded packet ready for any number of sessions: the text packet then its binary
/// attachments, each an immutable <see cref="EngineMessage"/>.
/// </summary>
public sealed class EncodedPacket
{
    /// <summary>A packet made of <paramref name="messages"/>.</summary>
    public EncodedPacket(EngineMessage[] messages) => Messages = messages;

    /// <summary>The Engine.IO messages, in order.</summary>
    public EngineMessage[] Messages { get; }
}

/// <summary>Outcome of feeding one Engine.IO message to a decoder.</summary>
public enum DecodeStatus
{
    /// <summary>A whole packet is available.</summary>
    Complete,

    /// <summary>The packet waits for more binary attachments.</summary>
    NeedMore,

    /// <summary>The input is malformed; the connection must be closed.</summary>
    Error,
}

/// <summary>Turns packets into Engine.IO messages and back. JSON is the default format.</summary>
public interface ISocketIOParser
{
    /// <summary>Encodes a packet whose data is the given value (an array of arguments, an object, or null).</summary>
    EncodedPacket Encode(SocketPacketType type, string nsp, long? id, object? data, bool isVolatile = false);

    /// <summary>A decoder for one connection (it holds partially received binary packets).</summary>
    IPacketDecoder CreateDecoder();
}

/// <summary>Per-connection decoder.</summary>
public interface IPacketDecoder
{
    /// <summary>Feeds one Engine.IO message; a packet is returned once complete (with its attachments).</summary>
    DecodeStatus Decode(EngineMessage message, out SocketPacket? packet, out string? error);
}
