using BenchmarkDotNet.Attributes;
using EngineIO;
using SocketIO.Parser;

namespace Benchmarks;

/// <summary>
/// <see cref="ParserBenchmarks"/>' packets with the MessagePack parser (socket.io-msgpack-parser
/// format): one binary message per packet, the attachment as a bin value in place.
/// </summary>
[MemoryDiagnoser]
public class MessagePackParserBenchmarks
{
    private readonly MessagePackPacketParser _parser = new();
    private readonly object?[] _event;
    private readonly object?[] _binaryEvent;
    private EngineMessage _message = null!;
    private EngineMessage _binaryMessage = null!;

    public MessagePackParserBenchmarks()
    {
        var envelope = new StatusEnvelope(
            "agent:status:update",
            1698765432000,
            new StatusPayload("agent-uuid", "ui", "working", "Generating UI layout for Dashboard page", 65, "Selected 5 components from library"));
        _event = ["agent:status:update", envelope];
        var attachment = new byte[1024];
        new Random(42).NextBytes(attachment);
        _binaryEvent = ["agent:status:update", envelope, attachment];
    }

    [GlobalSetup]
    public void Setup()
    {
        _message = _parser.Encode(SocketPacketType.Event, "/", null, _event).Messages.Single();
        _binaryMessage = _parser.Encode(SocketPacketType.Event, "/", null, _binaryEvent).Messages.Single();
        if (_parser.CreateDecoder().Decode(_binaryMessage, out var packet, out _) != DecodeStatus.Complete || packet!.Attachments.Count != 1)
        {
            throw new InvalidOperationException("expected one binary value");
        }
    }

    [Benchmark(Description = "MessagePack: encode event")]
    public EncodedPacket EncodeEvent() => _parser.Encode(SocketPacketType.Event, "/", null, _event);

    [Benchmark(Description = "MessagePack: encode event + 1 KiB binary")]
    public EncodedPacket EncodeBinaryEvent() => _parser.Encode(SocketPacketType.Event, "/", null, _binaryEvent);

    [Benchmark(Description = "MessagePack: decode event")]
    public SocketPacket? DecodeEvent()
    {
        _parser.CreateDecoder().Decode(_message, out var packet, out _);
        return packet;
    }

    [Benchmark(Description = "MessagePack: decode event + 1 KiB binary")]
    public SocketPacket? DecodeBinaryEvent()
    {
        _parser.CreateDecoder().Decode(_binaryMessage, out var packet, out _);
        return packet;
    }
}
