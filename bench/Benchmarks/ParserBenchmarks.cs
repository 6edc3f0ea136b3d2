using BenchmarkDotNet.Attributes;
using EngineIO;
using SocketIO.Parser;

namespace Benchmarks;

/// <summary>
/// Socket.IO packet encode/decode with the default JSON parser, on a seed-shaped
/// <c>agent:status:update</c> event (text only, and with one binary attachment).
/// </summary>
[MemoryDiagnoser]
public class ParserBenchmarks
{
    /// <summary>The Engine.IO frame of the text event (270 bytes).</summary>
    public const string ExpectedFrame =
        "42[\"agent:status:update\",{\"type\":\"agent:status:update\",\"timestamp\":1698765432000,\"payload\":{\"agentId\":\"agent-uuid\","
        + "\"agentType\":\"ui\",\"status\":\"working\",\"currentTask\":\"Generating UI layout for Dashboard page\",\"progress\":65,"
        + "\"message\":\"Selected 5 components from library\"}}]";

    private readonly JsonPacketParser _parser = new();
    private readonly object?[] _event;
    private readonly object?[] _binaryEvent;
    private EngineMessage _text = null!;
    private EngineMessage[] _binaryMessages = null!;

    public ParserBenchmarks()
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
        // The decode inputs are exactly what the encoder produces (the "4" Engine.IO prefix included).
        _text = _parser.Encode(SocketPacketType.Event, "/", null, _event).Messages[0];
        if (_text.ToString() != ExpectedFrame)
        {
            throw new InvalidOperationException($"unexpected frame {_text}");
        }

        _binaryMessages = _parser.Encode(SocketPacketType.Event, "/", null, _binaryEvent).Messages;
        if (_binaryMessages.Length != 2)
        {
            throw new InvalidOperationException("expected one attachment");
        }
    }

    [Benchmark(Description = "Encode event (text)")]
    public EncodedPacket EncodeEvent() => _parser.Encode(SocketPacketType.Event, "/", null, _event);

    [Benchmark(Description = "Encode event + 1 KiB binary")]
    public EncodedPacket EncodeBinaryEvent() => _parser.Encode(SocketPacketType.Event, "/", null, _binaryEvent);

    [Benchmark(Description = "Decode event (text)")]
    public SocketPacket? DecodeEvent()
    {
        var decoder = _parser.CreateDecoder();
        decoder.Decode(_text, out var packet, out _);
        return packet;
    }

    [Benchmark(Description = "Decode event + 1 KiB binary")]
    public SocketPacket? DecodeBinaryEvent()
    {
        var decoder = _parser.CreateDecoder();
        decoder.Decode(_binaryMessages[0], out _, out _);
        decoder.Decode(_binaryMessages[1], out var packet, out _);
        return packet;
    }
}

public sealed record StatusEnvelope(string Type, long Timestamp, StatusPayload Payload);

public sealed record StatusPayload(string AgentId, string AgentType, string Status, string CurrentTask, int Progress, string Message);
