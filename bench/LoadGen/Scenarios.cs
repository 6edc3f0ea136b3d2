using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

namespace LoadGen;

/// <summary>CPU time of this process and of the server under test, as a share of one core.</summary>
internal sealed class CpuMeter
{
    private readonly int[] _serverPids;
    private TimeSpan _self;
    private double _server;
    private long _ts;

    public CpuMeter(int? serverPid) => _serverPids = serverPid is { } pid ? [pid] : [];

    /// <summary>The server side is several processes (a cluster and its Redis): their CPU is summed.</summary>
    public CpuMeter(int[] serverPids) => _serverPids = serverPids;

    public void Start()
    {
        _self = Process.GetCurrentProcess().TotalProcessorTime;
        _server = ServerSeconds();
        _ts = Stopwatch.GetTimestamp();
    }

    /// <summary>CPU seconds the server processes used between the last <see cref="Start"/> and <see cref="Stop"/> (NaN when unknown).</summary>
    public double LastServerSeconds { get; private set; } = double.NaN;

    /// <summary>(client %, server %) of one core since <see cref="Start"/>.</summary>
    public (double Client, double? Server) Stop()
    {
        var wall = Clock.Seconds(_ts, Stopwatch.GetTimestamp());
        var self = (Process.GetCurrentProcess().TotalProcessorTime - _self).TotalSeconds;
        var server = ServerSeconds();
        LastServerSeconds = server - _server;
        return (100 * self / wall, double.IsNaN(server) ? null : 100 * (server - _server) / wall);
    }

    private double ServerSeconds()
    {
        if (_serverPids.Length == 0)
        {
            return double.NaN;
        }

        var sum = 0.0;
        foreach (var pid in _serverPids)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                // after the command: state(0) ... utime(11) stime(12), in clock ticks (100/s on Linux)
                sum += (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
            }
            catch (IOException)
            {
                return double.NaN;
            }
        }

        return sum;
    }

    public static long? Rss(int? pid)
    {
        if (pid is null)
        {
            return null;
        }

        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return null;
    }
}

/// <summary>Waits for the deliveries of one burst and measures them.</summary>
internal static class Burst
{
    public static JsonObject Measure(Engine engine, CpuMeter cpu, IReadOnlyList<Conn> targets, int count, int burstId, Func<Task<string>> trigger, TimeSpan idle, TimeSpan max)
    {
        engine.BeginBurst(burstId);
        var expected = (long)targets.Count * count;
        cpu.Start();
        var t0 = Stopwatch.GetTimestamp();
        var request = trigger();
        long received = 0;
        var lastProgress = t0;
        while (true)
        {
            Thread.Sleep(10);
            var now = Stopwatch.GetTimestamp();
            var r = engine.Received();
            if (r != received)
            {
                received = r;
                lastProgress = now;
            }

            if (received >= expected && request.IsCompleted)
            {
                break;
            }

            if (request.IsCompleted && Clock.Seconds(lastProgress, now) > idle.TotalSeconds)
            {
                break;
            }

            if (Clock.Seconds(t0, now) > max.TotalSeconds || engine.FatalError is not null)
            {
                break;
            }
        }

        var (clientCpu, serverCpu) = cpu.Stop();
        string? answer = null;
        string? triggerError = null;
        try
        {
            answer = request.Wait(TimeSpan.FromSeconds(10)) ? request.Result : null;
        }
        catch (AggregateException e)
        {
            triggerError = e.InnerException?.Message;
        }

        Thread.Sleep(50); // let the workers finish the batch they are in before the figures are read
        var hist = new Histogram();
        long last = t0;
        long stale = 0;
        foreach (var w in engine.Workers)
        {
            if (Volatile.Read(ref w.StatsBurst) == burstId)
            {
                hist.Add(w.Latency);
                last = Math.Max(last, Volatile.Read(ref w.BurstLastTs));
            }

            stale += Volatile.Read(ref w.Stale);
        }

        received = engine.Received();
        long losses = 0;
        long anomalies = 0;
        var lossyClients = 0;
        foreach (var c in targets)
        {
            var got = Volatile.Read(ref c.CountBurst) == burstId ? Volatile.Read(ref c.Received) : 0;
            if (got < count)
            {
                losses += count - got;
                lossyClients++;
            }

            anomalies += Volatile.Read(ref c.CountBurst) == burstId ? c.Anomalies : 0;
        }

        var seconds = Clock.Seconds(t0, last);
        return new JsonObject
        {
            ["recipients"] = targets.Count,
            ["events"] = count,
            ["expected"] = expected,
            ["received"] = received,
            ["losses"] = losses,
            ["lossyClients"] = lossyClients,
            ["outOfOrder"] = anomalies,
            ["staleEvents"] = stale,
            ["seconds"] = Math.Round(seconds, 4),
            ["deliveriesPerSec"] = seconds > 0 ? Math.Round(received / seconds) : 0,
            ["latencyP50Ms"] = Ms(hist.Quantile(0.50)),
            ["latencyP99Ms"] = Ms(hist.Quantile(0.99)),
            ["latencyMaxMs"] = Ms(hist.Quantile(1.0)),
            ["clientCpuPct"] = Math.Round(clientCpu, 1),
            ["serverCpuPct"] = serverCpu is { } s ? Math.Round(s, 1) : null,
            ["serverCpuUsPerDelivery"] = received > 0 && !double.IsNaN(cpu.LastServerSeconds) ? Math.Round(cpu.LastServerSeconds * 1e6 / received, 3) : null,
            ["trigger"] = answer is null ? null : JsonNode.Parse(answer),
            ["triggerError"] = triggerError,
        };
    }

    private static JsonNode? Ms(double micros) => double.IsNaN(micros) ? null : Math.Round(micros / 1000, 3);
}
