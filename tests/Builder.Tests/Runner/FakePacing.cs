using Builder.Runner;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests.Runner;

/// <summary>
/// The runner on the gateway's fake clock: the simulated agents' pace, the progress pump, the
/// retry backoffs, the decision timeouts and the build records all read one
/// <see cref="FakeTimeProvider"/>, so a build moves only when a test advances it.
/// </summary>
internal static class FakePacing
{
    /// <summary>Builds on the fake clock run at the document's pace: a simulated second is a (fake) second.</summary>
    public const double Speed = 1;

    /// <summary>How far the clock moves at a time while a test waits for the next event.</summary>
    public static readonly TimeSpan Step = TimeSpan.FromMilliseconds(500);

    /// <summary>A gateway whose runner (agents included) works by its fake clock; heartbeats off.</summary>
    public static Task<TestGateway> StartGatewayAsync(Action<Dictionary<string, string?>>? configure = null, FakeTimeProvider? time = null)
    {
        time ??= new FakeTimeProvider(DateTimeOffset.UtcNow);
        return TestGateway.StartAsync(
            s =>
            {
                s["Builder:Heartbeat:IntervalSeconds"] = "100000";
                configure?.Invoke(s);
            },
            time,
            services => services.AddKeyedSingleton<TimeProvider>(BuildRunner.PacingClockKey, time));
    }

    /// <summary>
    /// Awaits <paramref name="task"/>, moving the clock one <see cref="Step"/> at a time while it
    /// is not done (the work it waits for runs only as time passes); a real-time deadline bounds it.
    /// </summary>
    public static async Task<T> DriveAsync<T>(FakeTimeProvider time, Task<T> task, TimeSpan deadline)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        while (!task.IsCompleted)
        {
            if (watch.Elapsed > deadline)
            {
                throw new TimeoutException($"not done within {deadline.TotalSeconds:0} s of real time (fake clock at {time.GetUtcNow():O})");
            }

            time.Advance(Step);

            // give the runner's continuations the turn the step released before moving again
            await Task.WhenAny(task, Task.Delay(TimeSpan.FromMilliseconds(2)));
        }

        return await task;
    }
}
