namespace EngineIO;

/// <summary>Timers for objects that live long (sessions, connections, deadlines).</summary>
public static class DetachedTimer
{
    /// <summary>
    /// <see cref="TimeProvider.CreateTimer"/> without capturing the caller's execution context: a
    /// timer holds what it captured (async locals such as the handshake request's activity, log
    /// scopes or a token validation's state) for as long as it lives.
    /// </summary>
    public static ITimer CreateDetachedTimer(this TimeProvider time, TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(time);
        using (ExecutionContext.SuppressFlow())
        {
            return time.CreateTimer(callback, state, dueTime, period);
        }
    }
}
