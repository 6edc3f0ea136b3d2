using System.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EngineIO;

/// <summary>
/// When the idle memory trimmer compacts the heap and gives memory back to the system. The .NET
/// GC keeps the memory a burst made it commit (a connect storm commits its gen0 budget, tens of
/// megabytes, and leaves half-empty regions behind) until the next collection needs it, which
/// in a quiet server is never; the trimmer does what V8's memory reducer does for Node.js: once
/// the process has grown and then gone quiet, one compacting collection returns the slack.
/// </summary>
public sealed class IdleMemoryTrimOptions
{
    /// <summary>How often the process is looked at.</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Quiet means: over each of the last <see cref="QuietChecks"/> intervals, the process allocated
    /// at most this many bytes per second, and its Engine.IO servers sent at most
    /// <see cref="QuietSentBytesPerSecond"/>.
    /// </summary>
    public long QuietAllocationBytesPerSecond { get; set; } = 1024 * 1024;

    /// <summary>
    /// See <see cref="QuietAllocationBytesPerSecond"/>. A broadcast allocates nothing per recipient,
    /// so a server pushing events can allocate little; what it sends shows it is busy. Heartbeats of
    /// 10 000 idle connections are about 2 KB/s.
    /// </summary>
    public long QuietSentBytesPerSecond { get; set; } = 256 * 1024;

    /// <summary>How many quiet intervals in a row come before a trim.</summary>
    public int QuietChecks { get; set; } = 2;

    /// <summary>
    /// Growth of the working set since start or since the last trim that is worth a trim: the
    /// larger of this and a quarter of the working set left by the last trim.
    /// </summary>
    public long MinGrowthBytes { get; set; } = 32L * 1024 * 1024;

    internal void Validate()
    {
        if (CheckInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(CheckInterval), "CheckInterval must be positive.");
        }

        if (QuietAllocationBytesPerSecond < 0 || QuietSentBytesPerSecond < 0 || QuietChecks < 1 || MinGrowthBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(QuietChecks), "QuietAllocationBytesPerSecond and QuietSentBytesPerSecond must not be negative; QuietChecks and MinGrowthBytes must be positive.");
        }
    }
}

/// <summary>What the trimmer reads of the process and the one thing it does to it.</summary>
public interface IMemoryTrimTarget
{
    /// <summary>Bytes allocated by the process since it started (<see cref="GC.GetTotalAllocatedBytes"/>).</summary>
    long AllocatedBytes { get; }

    /// <summary>The process's resident memory (<see cref="Environment.WorkingSet"/>).</summary>
    long WorkingSetBytes { get; }

    /// <summary>Bytes sent since the process started (<see cref="EngineIOServer.TotalBytesSent"/>).</summary>
    long SentBytes { get; }

    /// <summary>A blocking, compacting collection that decommits what it frees.</summary>
    void Trim();
}

/// <summary>The process itself.</summary>
public sealed class ProcessMemoryTrimTarget : IMemoryTrimTarget
{
    /// <summary>The one instance.</summary>
    public static readonly ProcessMemoryTrimTarget Instance = new();

    /// <summary>Bytes allocated by the process so far.</summary>
    public long AllocatedBytes => GC.GetTotalAllocatedBytes(false);

    /// <summary>The process's working set.</summary>
    public long WorkingSetBytes => Environment.WorkingSet;

    /// <summary>Bytes sent by every Engine.IO server of the process.</summary>
    public long SentBytes => EngineIOServer.TotalBytesSent;

    /// <summary>A blocking, compacting, aggressive full collection.</summary>
    public void Trim() => GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
}

/// <summary>
/// Compacts the heap once after the process has grown and gone quiet (see
/// <see cref="IdleMemoryTrimOptions"/>). A trim blocks every thread for the length of a full
/// compacting collection (about 150 ms with 10 000 connections on one core), which is why it waits
/// for quiet; a busy server never trims.
/// </summary>
public sealed class IdleMemoryTrimmer : IHostedService, IDisposable
{
    private readonly IdleMemoryTrimOptions _options;
    private readonly TimeProvider _time;
    private readonly IMemoryTrimTarget _target;
    private readonly ILogger _log;
    private readonly Lock _gate = new();
    private ITimer? _timer;
    private long _lastAllocated;
    private long _lastSent;
    private long _lastCheck;
    private long _baseline;
    private int _quiet;
    private int _trims;

    /// <summary>A trimmer watching <paramref name="target"/> (the process by default) on <paramref name="time"/>'s clock.</summary>
    public IdleMemoryTrimmer(IdleMemoryTrimOptions options, TimeProvider? time = null, IMemoryTrimTarget? target = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = time ?? TimeProvider.System;
        _target = target ?? ProcessMemoryTrimTarget.Instance;
        _log = logger ?? NullLogger.Instance;
    }

    /// <summary>How many trims ran.</summary>
    public int Trims => Volatile.Read(ref _trims);

    /// <summary>Starts the periodic checks.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_timer is null)
            {
                _lastAllocated = _target.AllocatedBytes;
                _lastSent = _target.SentBytes;
                _lastCheck = _time.GetTimestamp();
                _baseline = _target.WorkingSetBytes;
                _timer = _time.CreateDetachedTimer(static s => ((IdleMemoryTrimmer)s!).Check(), this, _options.CheckInterval, _options.CheckInterval);
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>Stops the periodic checks.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Stops the timer.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _timer?.Dispose();
            _timer = null;
        }
    }

    /// <summary>One look at the process; the timer calls it every <see cref="IdleMemoryTrimOptions.CheckInterval"/>.</summary>
    internal void Check()
    {
        if (!_gate.TryEnter())
        {
            return; // a trim is still running
        }

        try
        {
            if (_timer is null)
            {
                return;
            }

            var now = _time.GetTimestamp();
            var seconds = Math.Max(_time.GetElapsedTime(_lastCheck, now).TotalSeconds, 1e-3);
            var allocated = _target.AllocatedBytes;
            var sent = _target.SentBytes;
            var busy = (allocated - _lastAllocated) / seconds > _options.QuietAllocationBytesPerSecond
                || (sent - _lastSent) / seconds > _options.QuietSentBytesPerSecond;
            _lastAllocated = allocated;
            _lastSent = sent;
            _lastCheck = now;
            var workingSet = _target.WorkingSetBytes;
            _baseline = Math.Min(_baseline, workingSet);
            if (busy)
            {
                _quiet = 0;
                return;
            }

            if (++_quiet < _options.QuietChecks || workingSet - _baseline < Math.Max(_options.MinGrowthBytes, _baseline / 4))
            {
                return;
            }

            var started = Stopwatch.GetTimestamp();
            _target.Trim();
            var pause = Stopwatch.GetElapsedTime(started);
            var after = _target.WorkingSetBytes;
            _baseline = after;
            _quiet = 0;
            _lastAllocated = _target.AllocatedBytes;
            _lastSent = _target.SentBytes;
            _lastCheck = _time.GetTimestamp();
            _trims++;
            EngineLog.IdleMemoryTrimmed(_log, workingSet >> 20, after >> 20, (int)pause.TotalMilliseconds);
        }
        finally
        {
            _gate.Exit();
        }
    }
}
