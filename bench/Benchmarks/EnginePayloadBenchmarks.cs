using System.Buffers;
using BenchmarkDotNet.Attributes;
using EngineIO;

namespace Benchmarks;

/// <summary>
/// Engine.IO HTTP long-polling payloads: encoding a batch of queued packets into one response
/// (text joined by 0x1E, binary as "b" + base64) and decoding a received POST body.
/// </summary>
[MemoryDiagnoser]
public class EnginePayloadBenchmarks
{
    private readonly List<EngineMessage> _packets = [];
    private readonly ArrayBufferWriter<byte> _output = new(16 * 1024);
    private ReadOnlyMemory<byte> _payload;

    [GlobalSetup]
    public void Setup()
    {
        for (var i = 0; i < 9; i++)
        {
            _packets.Add(EngineMessage.Text($"2[\"agent:status:update\",{{\"type\":\"agent:status:update\",\"timestamp\":1698765432000,\"payload\":{{\"agentId\":\"agent-{i}\",\"agentType\":\"ui\",\"status\":\"working\",\"progress\":{i * 10}}}}}]"));
        }

        var attachment = new byte[1024];
        new Random(7).NextBytes(attachment);
        _packets.Add(EngineMessage.Binary(attachment));

        var writer = new ArrayBufferWriter<byte>();
        PollingPayload.Encode(_packets, writer);
        _payload = writer.WrittenMemory.ToArray();
        var decoded = new List<EngineMessage>();
        if (!PollingPayload.TryDecode(_payload, decoded) || decoded.Count != _packets.Count)
        {
            throw new InvalidOperationException("the payload does not round-trip");
        }
    }

    [Benchmark(Description = "Polling payload encode (9 text + 1 KiB binary)")]
    public int Encode()
    {
        _output.ResetWrittenCount();
        PollingPayload.Encode(_packets, _output);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "Polling payload decode (9 text + 1 KiB binary)")]
    public int Decode()
    {
        var packets = new List<EngineMessage>(10);
        PollingPayload.TryDecode(_payload, packets);
        return packets.Count;
    }
}
