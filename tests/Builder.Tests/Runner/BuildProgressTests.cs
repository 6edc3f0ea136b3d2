using System.Globalization;
using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>build:progress is derived from the agents, coalesced to a bounded rate, and never goes backwards.</summary>
public sealed class BuildProgressTests
{
    [Fact]
    public async Task Progress_events_are_coalesced_to_the_configured_rate()
    {
        // on the runner's fake clock: one build:progress per 4 s of its time at most, while its
        // agents report far more often than that
        const double rate = 0.25;
        await using var gateway = await FakePacing.StartGatewayAsync(s => s["Builder:Runner:ProgressEventsPerSecond"] = rate.ToString(CultureInfo.InvariantCulture));
        await using var alice = gateway.Client(gateway.Token("alice", ["shop-rate"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("shop-rate");

        var startedAt = gateway.Time.GetUtcNow();
        await BuildApi.StartAsync(gateway, "shop-rate", speed: FakePacing.Speed);
        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        var elapsed = (gateway.Time.GetUtcNow() - startedAt).TotalSeconds;
        BuildAssertions.CompletedBuild(events, "shop-rate", deployed: false);

        var reports = events.Count(e => e.Name == "agent:status:update");
        var progress = events.Count(e => e.Name == "build:progress");
        // the timer's ticks, plus one forced event at the end of each phase
        var bound = (int)Math.Ceiling(rate * elapsed) + BuildAssertions.Phases.Length + 1;
        Assert.True(progress <= bound, $"{progress} build:progress in {elapsed:0.0} s of the runner's clock (bound {bound}) for {reports} agent reports:\n{EventStream.Describe(events)}");
        Assert.True(reports > bound, $"the agents reported only {reports} times: the bound proves nothing");

        // and the build took at least its estimate on that clock (the estimate is its critical path)
        var estimate = events[0].Payload().GetProperty("estimatedDuration").GetDouble();
        Assert.True(events[^1].Payload().GetProperty("duration").GetDouble() >= estimate, $"duration {events[^1].Payload().GetProperty("duration")} < estimate {estimate}");
    }

    /// <summary>Real time (the system clock): ten builds whose progress timer ticks every millisecond race their agents.</summary>
    [Fact]
    public async Task Progress_never_goes_backwards_when_the_timer_ticks_often()
    {
        var runs = await RunBuildsWithFrequentTicksAsync("shop-ticks");
        for (var i = 0; i < runs.Length; i++)
        {
            BuildAssertions.Progress(runs[i].Take(runs[i].Count - 1).ToList(), $"shop-ticks-{i}");
        }
    }

    [Fact]
    public async Task Progress_is_published_only_when_it_changed()
    {
        // the timer bounds the rate; it is no reason to publish: an unchanged progress is not news
        // (and while a build waits for a decision it would fill the log with copies)
        var runs = await RunBuildsWithFrequentTicksAsync("shop-same");
        for (var i = 0; i < runs.Length; i++)
        {
            var progress = runs[i].Where(e => e.Name == "build:progress").ToList();
            for (var k = 1; k < progress.Count; k++)
            {
                Assert.False(Key(progress[k]) == Key(progress[k - 1]), $"shop-same-{i}: build:progress seq {progress[k].Seq()} repeats seq {progress[k - 1].Seq()}:\n{EventStream.Describe(progress)}");
            }
        }

        static (string?, int, int, string?) Key(ReceivedEvent e)
        {
            var p = e.Payload();
            return (p.GetProperty("currentPhase").GetString(), p.GetProperty("phaseProgress").GetInt32(), p.GetProperty("overallProgress").GetInt32(), p.GetProperty("message").GetString());
        }
    }

    /// <summary>Ten builds at once whose progress timer ticks every millisecond; each run read to its build:completed.</summary>
    private static async Task<List<ReceivedEvent>[]> RunBuildsWithFrequentTicksAsync(string prefix)
    {
        const int builds = 10;
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Heartbeat:IntervalSeconds"] = "100000";
            s["Builder:Runner:ProgressEventsPerSecond"] = "1000";
        });
        var clients = new BuilderClient[builds];
        try
        {
            for (var i = 0; i < builds; i++)
            {
                clients[i] = gateway.Client(gateway.Token("alice", [$"{prefix}-{i}"]));
                await clients[i].ConnectAsync();
                await clients[i].JoinAsync($"{prefix}-{i}");
            }

            await Task.WhenAll(Enumerable.Range(0, builds).Select(i => BuildApi.StartAsync(gateway, $"{prefix}-{i}", speed: 200)));
            var runs = await Task.WhenAll(clients.Select(c => EventStream.RunToEndAsync(c, answer: "option-1", wait: TimeSpan.FromSeconds(60))));
            for (var i = 0; i < builds; i++)
            {
                Assert.True(runs[i][^1].Name == "build:completed", $"{prefix}-{i}:\n{EventStream.Describe(runs[i])}");
            }

            return runs;
        }
        finally
        {
            await Task.WhenAll(clients.Where(c => c is not null).Select(c => c.DisposeAsync().AsTask()));
        }
    }
}
