using System.Diagnostics;
using System.Globalization;

namespace LoadGen;

internal static class Clock
{
    /// <summary>Wall-clock epoch milliseconds, fractional (the servers stamp sentAt the same way).</summary>
    public static double NowMs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerMillisecond;

    public static double Seconds(long from, long to) => (to - from) / (double)Stopwatch.Frequency;
}

/// <summary>The connections spread over the worker threads, and what the scenarios read of them.</summary>
internal sealed class Engine : IDisposable
{
    private readonly Worker[] _workers;
    private readonly List<Conn> _all = [];
    private int _inflight;
    private int _ready;
    private int _failedPending;
    private int _failedLater;
    private string? _fatal;
    private int _currentBurst = -1;

    public Engine(string host, int port, int threads, int sourceAddresses, bool messagePack = false)
        : this(host, [port], threads, sourceAddresses, messagePack)
    {
    }

    /// <summary>Clients spread over several servers of one host: client i connects to <c>ports[i % ports.Length]</c>.</summary>
    public Engine(string host, int[] ports, int threads, int sourceAddresses, bool messagePack = false)
    {
        if (!Native.Supported)
        {
            throw new PlatformNotSupportedException("The load client needs Linux x86-64 (it drives its sockets with epoll).");
        }

        TargetIp = host == "localhost" ? 0x7F000001u : ParseIp(host);
        Ports = ports;
        _hostHeaders = [.. ports.Select(p => $"{host}:{p}")];
        SourceAddresses = sourceAddresses;
        MessagePack = messagePack;
        _workers = new Worker[threads];
        for (var i = 0; i < threads; i++)
        {
            _workers[i] = new Worker(this, i);
            _workers[i].Start();
        }
    }

    public uint TargetIp { get; }

    public int[] Ports { get; }

    private readonly string[] _hostHeaders;

    public int PortOf(Conn c) => Ports[c.Index % Ports.Length];

    public string HostHeaderOf(Conn c) => _hostHeaders[c.Index % Ports.Length];

    public string Path { get; init; } = "/socket.io/";

    /// <summary>Socket.IO packets in the socket.io-msgpack-parser 3.x format (binary messages) instead of JSON text.</summary>
    public bool MessagePack { get; }

    /// <summary>The value of <c>--parser</c>: <c>json</c> (default) or <c>msgpack</c>; true for msgpack.</summary>
    public static bool IsMessagePack(string parser) => parser switch
    {
        "json" => false,
        "msgpack" => true,
        _ => throw new ArgumentException($"--parser must be 'json' or 'msgpack', not '{parser}'"),
    };

    public int SourceAddresses { get; }

    public int CurrentBurst => Volatile.Read(ref _currentBurst);

    public int Ready => Volatile.Read(ref _ready);

    public int Inflight => Volatile.Read(ref _inflight);

    public int FailedPending => Volatile.Read(ref _failedPending);

    public int FailedLater => Volatile.Read(ref _failedLater);

    public string? FatalError => Volatile.Read(ref _fatal);

    public IReadOnlyList<Conn> All => _all;

    public IReadOnlyList<Worker> Workers => _workers;

    private static uint ParseIp(string host)
    {
        var parts = host.Split('.');
        if (parts.Length != 4)
        {
            throw new ArgumentException($"The load client connects to an IPv4 address (127.0.0.1), not '{host}'.");
        }

        uint ip = 0;
        foreach (var part in parts)
        {
            ip = (ip << 8) | byte.Parse(part, CultureInfo.InvariantCulture);
        }

        return ip;
    }

    internal void Fatal(string message) => Interlocked.CompareExchange(ref _fatal, message, null);

    internal void OnReady(Conn c)
    {
        Interlocked.Increment(ref _ready);
        Interlocked.Decrement(ref _inflight);
    }

    internal void OnFailed(Conn c, bool wasPending)
    {
        if (wasPending)
        {
            Interlocked.Increment(ref _failedPending);
            Interlocked.Decrement(ref _inflight);
        }
        else
        {
            Interlocked.Increment(ref _failedLater);
        }
    }

    /// <summary>
    /// Opens <paramref name="count"/> connections, at most <paramref name="concurrency"/> handshakes
    /// in flight and at most <paramref name="maxRate"/> new ones per second (0: no rate bound), and
    /// waits (at most <paramref name="timeout"/>) until each is ready or failed.
    /// </summary>
    public (double Seconds, int Ready, int Failed) Connect(int count, int concurrency, int maxRate, Func<int, (string Auth, string[] Rooms)> describe, TimeSpan timeout)
    {
        var start = Stopwatch.GetTimestamp();
        var deadline = start + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var baseIndex = _all.Count;
        var readyBefore = Ready;
        var failedBefore = FailedPending;
        for (var i = 0; i < count; i++)
        {
            while (Inflight >= concurrency || (maxRate > 0 && i > maxRate * Clock.Seconds(start, Stopwatch.GetTimestamp())))
            {
                if (Stopwatch.GetTimestamp() > deadline || FatalError is not null)
                {
                    return (Clock.Seconds(start, Stopwatch.GetTimestamp()), Ready - readyBefore, FailedPending - failedBefore + (count - i));
                }

                Thread.Sleep(1);
            }

            var (auth, rooms) = describe(baseIndex + i);
            var c = new Conn { Index = baseIndex + i, Auth = auth, Rooms = rooms };
            _all.Add(c);
            Interlocked.Increment(ref _inflight);
            var w = _workers[c.Index % _workers.Length];
            w.Post(() => w.Open(c));
        }

        while (Inflight > 0 && Stopwatch.GetTimestamp() < deadline && FatalError is null)
        {
            Thread.Sleep(2);
        }

        var last = start;
        foreach (var c in _all.Skip(baseIndex))
        {
            if (c.State == ConnState.Ready && c.ReadyTs > last)
            {
                last = c.ReadyTs;
            }
        }

        var ready = Ready - readyBefore;
        return (Clock.Seconds(start, ready > 0 ? last : Stopwatch.GetTimestamp()), ready, count - ready);
    }

    /// <summary>Makes the connections with index below <paramref name="below"/> join one more room, and waits for the acks.</summary>
    public int JoinExtra(string room, int below, TimeSpan timeout)
    {
        var targets = _all.Where(c => c.Index < below && c.State == ConnState.Ready).ToList();
        var done = 0;
        foreach (var group in targets.GroupBy(c => c.Index % _workers.Length))
        {
            var w = _workers[group.Key];
            var list = group.ToList();
            w.Post(() =>
            {
                foreach (var c in list)
                {
                    w.Join(c, room);
                }
            });
        }

        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline)
        {
            Thread.Sleep(5);
            done = targets.Count(c => Volatile.Read(ref c.PendingAcks) == 0);
            if (done == targets.Count)
            {
                break;
            }
        }

        return done;
    }

    public void BeginBurst(int burstId) => Volatile.Write(ref _currentBurst, burstId);

    public long Received()
    {
        long sum = 0;
        foreach (var w in _workers)
        {
            if (Volatile.Read(ref w.StatsBurst) == CurrentBurst)
            {
                sum += Volatile.Read(ref w.BurstReceived);
            }
        }

        return sum;
    }

    public void CloseAll()
    {
        using var done = new CountdownEvent(_workers.Length);
        foreach (var w in _workers)
        {
            w.Post(() =>
            {
                w.CloseAll();
                done.Signal();
            });
        }

        done.Wait(TimeSpan.FromSeconds(10));
    }

    public void Dispose()
    {
        foreach (var w in _workers)
        {
            w.Stop();
            w.Dispose();
        }
    }
}
