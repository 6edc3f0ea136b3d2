using System.Threading.Tasks.Sources;

namespace EngineIO;

/// <summary>
/// A reusable wake-up for a session's single writer: waiting allocates nothing, which matters
/// when a broadcast wakes thousands of idle writers at once. Continuations run on the thread pool,
/// never inline in the broadcasting thread.
/// </summary>
internal sealed class WriterSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private int _armed;

    /// <summary>Arms the signal; the caller then re-checks its condition and awaits <see cref="WaitAsync"/>.</summary>
    public void Arm()
    {
        _core.Reset();
        Volatile.Write(ref _armed, 1);
        Interlocked.MemoryBarrier();
    }

    public ValueTask WaitAsync() => new(this, _core.Version);

    /// <summary>Wakes the writer if it is armed; at most once per arming.</summary>
    public void Set()
    {
        if (Volatile.Read(ref _armed) == 1 && Interlocked.Exchange(ref _armed, 0) == 1)
        {
            _core.SetResult(true);
        }
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
