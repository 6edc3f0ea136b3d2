using System.Diagnostics;

namespace Builder.Tests.Infrastructure;

/// <summary>Awaits a condition with a deadline (never a fixed sleep).</summary>
public static class Until
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        var delay = 10;
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for {what}");
            }

            await Task.Delay(delay);
            delay = Math.Min(delay * 2, 200);
        }
    }
}
