using System.Diagnostics.Metrics;

namespace EngineIO;

/// <summary>
/// The server's instruments on the process-wide meter <c>EngineIO</c>:
/// <c>engineio.send_queue.drops</c>, packets a full send queue (<see cref="EngineIOOptions.MaxBufferedBytes"/>,
/// <see cref="EngineIOOptions.MaxBufferedPackets"/>) refused, by <c>outcome</c>: <c>dropped</c> (a
/// volatile packet, lost on purpose) or <c>closed</c> (the session was closed as a slow consumer).
/// </summary>
internal static class EngineIOMetrics
{
    public const string MeterName = "EngineIO";

    private static readonly Meter s_meter = new(MeterName);
    private static readonly Counter<long> s_drops = s_meter.CreateCounter<long>("engineio.send_queue.drops", "{packet}", "Packets refused by a full send queue, by outcome: dropped (volatile) or closed (the session closed as a slow consumer)");

    public static void SendQueueFull(bool closed) =>
        s_drops.Add(1, new KeyValuePair<string, object?>("outcome", closed ? "closed" : "dropped"));
}
