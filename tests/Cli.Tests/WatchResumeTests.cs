using System.Globalization;
using System.Text.RegularExpressions;
using Abuse.Tests;

namespace Cli.Tests;

/// <summary><c>watch</c> cut off from the gateway mid-build resumes with <c>lastSeq</c>: no event missed, none twice.</summary>
[Collection(GatewayCollection.Name)]
public sealed partial class WatchResumeTests(GatewayFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Watch_resumes_after_a_disconnect_with_lastSeq_and_sees_every_event_once()
    {
        var project = "resume-" + Guid.NewGuid().ToString("N")[..8];
        var token = GatewayFixture.Token("resumer", project);
        var direct = fixture.Env(token);
        await using var proxy = new LoopbackProxy(fixture.Gateway.Port);
        var throughProxy = fixture.Env(token);
        throughProxy["BUILDER_URL"] = proxy.Url;

        await using var watch = CliProcess.Start(["watch", project, "--timeout", "120"], throughProxy);
        await watch.WaitForLineAsync(l => l.StartsWith($"watching {project}", StringComparison.Ordinal), Wait, "the watch to join");
        var (startExit, _, startErr) = await CliProcess.RunAsync(["build", "start", project, "--speed", "1000", "--seed", "5"], direct);
        Assert.True(startExit == 0, startErr);

        // the build waits for the layout decision: cut the watch off there
        var asked = await watch.WaitForLineAsync(l => l.StartsWith("decision ", StringComparison.Ordinal) && l.Contains(" asked: ", StringComparison.Ordinal), Wait, "the decision");
        proxy.Cut();

        // events the watch cannot receive now: it must get them on its resume
        var missed = new List<long>();
        for (var i = 1; i <= 5; i++)
        {
            var (exit, stdout, stderr) = await CliProcess.RunAsync(["publish", project, "agent:status:update", $"{{\"agentId\":\"agent-offline\",\"agentType\":\"integration\",\"status\":\"working\",\"progress\":{i * 10},\"currentTask\":\"while cut off {i}\"}}"], direct);
            Assert.True(exit == 0, stderr);
            missed.Add(long.Parse(PublishedSeq().Match(stdout).Groups[1].Value, CultureInfo.InvariantCulture));
        }

        var forwardedBefore = proxy.Forwarded;
        proxy.Restore();
        await Deadline.UntilAsync(() => watch.Stderr.Contains($"reconnected: re-joining {project} after seq ", StringComparison.Ordinal) || watch.HasExited, Wait, "the watch to re-join");
        Assert.False(watch.HasExited, $"the watch ended instead of resuming:\n{watch.Stdout}\n{watch.Stderr}");
        Assert.True(proxy.Forwarded > forwardedBefore, "the watch reconnected through the proxy");
        var resumedAfter = long.Parse(ResumedAfter().Match(watch.Stderr).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(resumedAfter < missed[0], $"the watch resumed after seq {resumedAfter}, past the first missed event {missed[0]}");

        // the events published while it was cut off are replayed to it
        await watch.WaitForLineAsync(l => l.Contains("while cut off 5", StringComparison.Ordinal), Wait, "the replayed events");
        var (decideExit, _, decideErr) = await CliProcess.RunAsync(["decide", asked.Split(' ')[1], "option-1"], direct);
        Assert.True(decideExit == 0, decideErr);
        Assert.Equal(0, await watch.WaitForExitAsync(Wait));
        Assert.StartsWith("build completed in ", watch.Lines[^1], StringComparison.Ordinal);

        // every seq of the project once: the count of what replay reads from the log
        var summary = Summary().Match(watch.Stderr);
        Assert.True(summary.Success, watch.Stderr);
        var folded = long.Parse(summary.Groups[1].Value, CultureInfo.InvariantCulture);
        var lastSeq = long.Parse(summary.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.Equal("0", summary.Groups[3].Value); // repeated
        Assert.Equal("0", summary.Groups[4].Value); // missing
        var (replayExit, replayOut, replayErr) = await CliProcess.RunAsync(["replay", project, "--from", "0", "--json"], direct);
        Assert.True(replayExit == 0, replayErr);
        var logged = replayOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        Assert.Equal(logged, lastSeq); // build:completed (no deployment) is the log's last event
        Assert.Equal(lastSeq, folded); // it joined before the build (snapshot at seq 0) and folded each seq once
        Assert.True(missed[^1] <= lastSeq);
    }

    [GeneratedRegex(@"published agent:status:update seq (\d+) ")]
    private static partial Regex PublishedSeq();

    [GeneratedRegex(@"re-joining [^ ]+ after seq (\d+)")]
    private static partial Regex ResumedAfter();

    [GeneratedRegex(@"events: (\d+) folded up to seq (\d+), (\d+) repeated, (\d+) missing")]
    private static partial Regex Summary();
}
