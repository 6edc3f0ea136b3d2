using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;

namespace EngineIO;

/// <summary>
/// Writes out the WebSocket sessions that have packets queued, from one thread-pool work item
/// per round instead of one per session. When other work is waiting in the thread pool (a
/// server under load: more broadcasts coming) a round is put back behind it, a bounded number of
/// times (<see cref="EngineIOOptions.MaxFlushDeferrals"/>) and for a bounded time
/// (<see cref="EngineIOOptions.MaxFlushDelay"/>), so that the frames of several broadcasts leave
/// each connection in one write and one system call. A round of fewer than
/// <see cref="MinSessionsToDefer"/> sessions (handshake replies, acks, a small room) is never put
/// back, and an idle server flushes at once.
/// </summary>
internal sealed class WebSocketFlusher(EngineIOOptions options, ILogger log) : IThreadPoolWorkItem
{
    /// <summary>Rounds smaller than this are written at once: coalescing pays off for fan-outs.</summary>
    internal const int MinSessionsToDefer = 64;

    private readonly ConcurrentQueue<EngineSession> _sessions = new();
    private readonly int _maxDeferrals = options.MaxFlushDeferrals;
    private readonly long _maxDelayTicks = (long)(options.MaxFlushDelay.TotalSeconds * Stopwatch.Frequency);
    private int _scheduled;
    private int _deferrals;
    private long _roundStarted;

    /// <summary>Queues a session for the next round (the session makes sure it is queued once).</summary>
    public void Schedule(EngineSession session)
    {
        // Enqueue is a full fence, so a round that has just let go of _scheduled sees this session
        // or this reads 0; a broadcast reads the flag once per recipient without a locked instruction
        _sessions.Enqueue(session);
        if (Volatile.Read(ref _scheduled) == 0 && Interlocked.Exchange(ref _scheduled, 1) == 0)
        {
            _roundStarted = Stopwatch.GetTimestamp();
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
    }

    public void Execute()
    {
        if (_deferrals < _maxDeferrals
            && _sessions.Count >= MinSessionsToDefer
            && ThreadPool.PendingWorkItemCount > 0
            && Stopwatch.GetTimestamp() - _roundStarted < _maxDelayTicks)
        {
            _deferrals++;
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            return;
        }

        _deferrals = 0;
        while (true)
        {
            while (_sessions.TryDequeue(out var session))
            {
                try
                {
                    session.Flush();
                }
#pragma warning disable CA1031 // one session's failure must not stop the round (or the process)
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    EngineLog.WriteFailed(log, ex, session.Id);
                    session.Abort(EngineCloseReasonKind.TransportError);
                }
            }

            Interlocked.Exchange(ref _scheduled, 0); // a full fence before looking at the queue again
            if (_sessions.IsEmpty || Interlocked.Exchange(ref _scheduled, 1) == 1)
            {
                return;
            }
        }
    }
}
