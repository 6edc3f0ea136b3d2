using EngineIO;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace SocketIO.Tests.Server;

/// <summary>
/// The idle memory trimmer on a fake clock and a scripted process: the test sets what the process
/// allocates and how large it is between checks, advances the clock one check at a time, and
/// counts the trims.
/// </summary>
public sealed class IdleMemoryTrimmerTests
{
    private const long MB = 1024 * 1024;
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private sealed class ScriptedProcess : IMemoryTrimTarget
    {
        public long AllocatedBytes { get; set; }

        public long SentBytes { get; set; }

        public long WorkingSetBytes { get; set; } = 100 * MB;

        /// <summary>The working set a trim leaves.</summary>
        public long AfterTrim { get; set; } = 100 * MB;

        public int TrimCalls { get; private set; }

        public void Trim()
        {
            TrimCalls++;
            WorkingSetBytes = AfterTrim;
        }
    }

    private static (IdleMemoryTrimmer Trimmer, ScriptedProcess Process, FakeTimeProvider Time) Start(Action<IdleMemoryTrimOptions>? configure = null)
    {
        var options = new IdleMemoryTrimOptions { CheckInterval = Interval, QuietChecks = 2, QuietAllocationBytesPerSecond = MB, QuietSentBytesPerSecond = MB / 4, MinGrowthBytes = 32 * MB };
        configure?.Invoke(options);
        var time = new FakeTimeProvider();
        var process = new ScriptedProcess();
        var trimmer = new IdleMemoryTrimmer(options, time, process);
        trimmer.StartAsync(CancellationToken.None).GetAwaiter().GetResult();
        return (trimmer, process, time);
    }

    /// <summary>One check interval in which the process allocates <paramref name="allocated"/> bytes.</summary>
    private static void Tick(ScriptedProcess process, FakeTimeProvider time, long allocated)
    {
        process.AllocatedBytes += allocated;
        time.Advance(Interval);
    }

    [Fact]
    public void A_process_that_grew_is_trimmed_once_after_the_quiet_checks()
    {
        var (trimmer, process, time) = Start();
        using (trimmer)
        {
            // a connect storm: 200 MB allocated per second, the working set grows by 180 MB
            process.WorkingSetBytes = 280 * MB;
            Tick(process, time, 200 * MB);
            Tick(process, time, 200 * MB);
            Assert.Equal(0, process.TrimCalls);

            Tick(process, time, MB / 2); // first quiet second
            Assert.Equal(0, process.TrimCalls);
            Tick(process, time, MB / 2); // second quiet second: trim
            Assert.Equal(1, process.TrimCalls);
            Assert.Equal(1, trimmer.Trims);

            // quiet from now on, and nothing grew: no more trims
            for (var i = 0; i < 10; i++)
            {
                Tick(process, time, 0);
            }

            Assert.Equal(1, process.TrimCalls);
        }
    }

    [Fact]
    public void A_busy_process_is_never_trimmed()
    {
        var (trimmer, process, time) = Start();
        using (trimmer)
        {
            process.WorkingSetBytes = 500 * MB;
            for (var i = 0; i < 20; i++)
            {
                // every other second busy: never two quiet checks in a row
                Tick(process, time, i % 2 == 0 ? 2 * MB : 0);
            }

            Assert.Equal(0, process.TrimCalls);
        }
    }

    [Fact]
    public void A_process_that_sends_without_allocating_is_busy()
    {
        var (trimmer, process, time) = Start();
        using (trimmer)
        {
            // a broadcast burst: no allocation per recipient, but megabytes sent
            process.WorkingSetBytes = 300 * MB;
            for (var i = 0; i < 10; i++)
            {
                process.SentBytes += 5 * MB;
                Tick(process, time, 0);
            }

            Assert.Equal(0, process.TrimCalls);

            // it stops sending: trimmed after two quiet checks
            Tick(process, time, 0);
            Assert.Equal(0, process.TrimCalls);
            Tick(process, time, 0);
            Assert.Equal(1, process.TrimCalls);
        }
    }

    [Fact]
    public void Growth_below_the_threshold_is_left_alone_and_the_threshold_is_at_least_a_quarter_of_the_baseline()
    {
        var (trimmer, process, time) = Start(o => o.MinGrowthBytes = 10 * MB);
        using (trimmer)
        {
            // baseline 100 MB: the threshold is max(10 MB, 25 MB) = 25 MB
            process.WorkingSetBytes = 124 * MB;
            for (var i = 0; i < 5; i++)
            {
                Tick(process, time, 0);
            }

            Assert.Equal(0, process.TrimCalls);
            process.WorkingSetBytes = 126 * MB;
            Tick(process, time, 0);
            Assert.Equal(1, process.TrimCalls);
        }
    }

    [Fact]
    public void After_a_trim_the_process_must_grow_again_before_the_next()
    {
        var (trimmer, process, time) = Start();
        using (trimmer)
        {
            process.WorkingSetBytes = 300 * MB;
            process.AfterTrim = 150 * MB; // what the trim could not give back is the new baseline
            Tick(process, time, 0);
            Tick(process, time, 0);
            Assert.Equal(1, process.TrimCalls);

            process.WorkingSetBytes = 180 * MB; // +30 MB: below max(32 MB, 150/4 MB)
            Tick(process, time, 0);
            Tick(process, time, 0);
            Assert.Equal(1, process.TrimCalls);

            process.WorkingSetBytes = 190 * MB; // +40 MB
            Tick(process, time, 0);
            Assert.Equal(2, process.TrimCalls);
        }
    }

    [Fact]
    public async Task A_stopped_trimmer_no_longer_checks()
    {
        var (trimmer, process, time) = Start();
        await trimmer.StopAsync(CancellationToken.None);
        process.WorkingSetBytes = 500 * MB;
        for (var i = 0; i < 5; i++)
        {
            Tick(process, time, 0);
        }

        Assert.Equal(0, process.TrimCalls);
    }

    [Fact]
    public void Bad_options_are_refused_with_the_option_named()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new IdleMemoryTrimmer(new IdleMemoryTrimOptions { CheckInterval = TimeSpan.Zero }));
        Assert.Contains("CheckInterval", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => new IdleMemoryTrimmer(new IdleMemoryTrimOptions { QuietChecks = 0 }));
    }

    [Fact]
    public void AddSocketIO_runs_no_trimmer_unless_the_host_opts_in()
    {
        // a library does not choose the host's GC policy: the trimmer is opt-in
        var plain = new ServiceCollection();
        plain.AddSocketIO();
        Assert.Empty(plain.BuildServiceProvider().GetServices<IHostedService>().OfType<IdleMemoryTrimmer>());

        var optedIn = new ServiceCollection();
        optedIn.AddSocketIO().AddIdleMemoryTrimmer(o => o.QuietChecks = 3);
        Assert.Single(optedIn.BuildServiceProvider().GetServices<IHostedService>().OfType<IdleMemoryTrimmer>());
    }
}
