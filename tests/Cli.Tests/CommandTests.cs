using System.Text.Json;
using Abuse.Tests;

namespace Cli.Tests;

/// <summary>The daily commands: token, publish, replay, build start and cancel, decide.</summary>
[Collection(GatewayCollection.Name)]
public sealed class CommandTests(GatewayFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Token_from_the_development_gateway_is_accepted()
    {
        var (exit, stdout, stderr) = await CliProcess.RunAsync(["token", "--user", "carol", "--projects", "alpha,beta", "--json"], fixture.Env());
        Assert.True(exit == 0, stderr);
        var minted = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("carol", minted.GetProperty("userId").GetString());
        var token = minted.GetProperty("token").GetString()!;

        var (connectExit, connectOut, connectErr) = await CliProcess.RunAsync([$"{fixture.Url}/builder", "--auth", $"{{\"token\":\"{token}\"}}", "--emit", "join-project", "{\"projectId\":\"beta\"}", "--until", "project-joined", "--json", "--timeout", "30"]);
        Assert.True(connectExit == 0, connectErr);
        Assert.Contains("{\"event\":\"authenticated\",\"data\":{\"userId\":\"carol\",\"username\":\"carol\"}}", connectOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Token_signed_with_the_secret_is_accepted_and_a_short_secret_is_refused()
    {
        var (exit, stdout, stderr) = await CliProcess.RunAsync(["token", "--secret", GatewayProcess.Secret, "--issuer", GatewayProcess.Issuer, "--audience", GatewayProcess.Audience, "--user", "dave", "--projects", "gamma"]);
        Assert.True(exit == 0, stderr);
        var token = stdout.Trim();
        var (connectExit, connectOut, connectErr) = await CliProcess.RunAsync(["replay", "gamma", "--from", "0", "--json"], fixture.Env(token));
        Assert.True(connectExit == 0, connectErr);
        Assert.Contains("replayed 0 event(s) of gamma after seq 0", connectErr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, connectOut);

        var (shortExit, _, shortErr) = await CliProcess.RunAsync(["token", "--secret", "too-short"]);
        Assert.Equal(2, shortExit);
        Assert.Contains("--secret must be at least 32 bytes", shortErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_then_replay_from_a_seq_prints_exactly_the_later_events()
    {
        var project = "replay-" + Guid.NewGuid().ToString("N")[..8];
        var env = fixture.Env(GatewayFixture.Token("replayer", project));
        for (var i = 1; i <= 4; i++)
        {
            var (exit, stdout, stderr) = await CliProcess.RunAsync(["publish", project, "agent:status:update", $"{{\"agentId\":\"agent-ui\",\"agentType\":\"ui\",\"status\":\"working\",\"progress\":{i * 20}}}"], env);
            Assert.True(exit == 0, stderr);
            Assert.StartsWith($"published agent:status:update seq {i} (", stdout, StringComparison.Ordinal);
        }

        var (replayExit, replayOut, replayErr) = await CliProcess.RunAsync(["replay", project, "--from", "2", "--json"], env);
        Assert.True(replayExit == 0, replayErr);
        var events = replayOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([3L, 4L], events.Select(e => e.GetProperty("data").GetProperty("seq").GetInt64()));
        Assert.Equal([60, 80], events.Select(e => e.GetProperty("data").GetProperty("payload").GetProperty("progress").GetInt32()));
        Assert.Contains($"replayed 2 event(s) of {project} after seq 2; the log's head is seq 4", replayErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Build_cancel_stops_a_running_build_and_a_second_cancel_is_refused()
    {
        var project = "cancel-" + Guid.NewGuid().ToString("N")[..8];
        var env = fixture.Env(GatewayFixture.Token("canceller", project));
        await using var watch = CliProcess.Start(["watch", project, "--timeout", "120"], env);
        await watch.WaitForLineAsync(l => l.StartsWith($"watching {project}", StringComparison.Ordinal), Wait, "the watch to join");

        // real-time speed: the build is still running when cancelled
        var (startExit, startOut, startErr) = await CliProcess.RunAsync(["build", "start", project, "--speed", "1"], env);
        Assert.True(startExit == 0, startErr);
        var buildId = startOut.Trim();
        await watch.WaitForLineAsync(l => l.StartsWith("build running", StringComparison.Ordinal), Wait, "the build to start");

        var (cancelExit, cancelOut, cancelErr) = await CliProcess.RunAsync(["build", "cancel", project, buildId], env);
        Assert.True(cancelExit == 0, cancelErr);
        Assert.Equal($"cancelled {buildId}", cancelOut.Trim());
        Assert.Equal(1, await watch.WaitForExitAsync(Wait));
        Assert.Equal("build cancelled by cli", watch.Lines[^1]);

        var (againExit, _, againErr) = await CliProcess.RunAsync(["build", "cancel", project, buildId], env);
        Assert.Equal(1, againExit);
        Assert.Contains("404 BUILD_NOT_RUNNING", againErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Decide_on_an_unknown_decision_exits_1_with_the_gateways_code()
    {
        var (exit, _, stderr) = await CliProcess.RunAsync(["decide", "decision-nope", "option-1"], fixture.Env(GatewayFixture.Token("decider", "*")));
        Assert.Equal(1, exit);
        Assert.Contains("The answer was refused: DECISION_NOT_FOUND", stderr, StringComparison.Ordinal);
    }
}
