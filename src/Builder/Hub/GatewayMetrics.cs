using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace Builder.Hub;

/// <summary>Counters and gauges of the gateway, rendered as Prometheus text at /metrics.</summary>
public sealed class GatewayMetrics
{
    private readonly ConcurrentDictionary<string, long> _counters = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Func<double>> _gauges = new(StringComparer.Ordinal);
    private long _rttCount;
    private double _rttSumMs;
    private double _rttLastMs;
    private readonly Lock _rttGate = new();

    public void Increment(string name, string? label = null, long by = 1) =>
        _counters.AddOrUpdate(Key(name, label), by, (_, v) => v + by);

    public long Get(string name, string? label = null) => _counters.TryGetValue(Key(name, label), out var v) ? v : 0;

    public void Gauge(string name, Func<double> read) => _gauges[name] = read;

    public void ObserveHeartbeatRtt(TimeSpan rtt)
    {
        lock (_rttGate)
        {
            _rttCount++;
            _rttSumMs += rtt.TotalMilliseconds;
            _rttLastMs = rtt.TotalMilliseconds;
        }
    }

    private static string Key(string name, string? label) => label is null ? name : $"{name}{{type=\"{label}\"}}";

    public string Render()
    {
        var sb = new StringBuilder();
        foreach (var group in _counters.OrderBy(p => p.Key, StringComparer.Ordinal).GroupBy(p => p.Key.Split('{')[0]))
        {
            sb.Append("# TYPE ").Append(group.Key).Append(" counter\n");
            foreach (var (key, value) in group)
            {
                sb.Append(key).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }

        foreach (var (name, read) in _gauges.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            sb.Append("# TYPE ").Append(name).Append(" gauge\n");
            sb.Append(name).Append(' ').Append(read().ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        lock (_rttGate)
        {
            sb.Append("# TYPE builder_heartbeat_rtt_ms summary\n");
            sb.Append("builder_heartbeat_rtt_ms_count ").Append(_rttCount.ToString(CultureInfo.InvariantCulture)).Append('\n');
            sb.Append("builder_heartbeat_rtt_ms_sum ").Append(_rttSumMs.ToString("0.###", CultureInfo.InvariantCulture)).Append('\n');
            sb.Append("# TYPE builder_heartbeat_rtt_last_ms gauge\n");
            sb.Append("builder_heartbeat_rtt_last_ms ").Append(_rttLastMs.ToString("0.###", CultureInfo.InvariantCulture)).Append('\n');
        }

        return sb.ToString();
    }
}
