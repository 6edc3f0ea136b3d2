namespace Cli.Tests;

/// <summary><c>builder watch</c> on a non-interactive console (its output redirected), to the build's result.</summary>
[Collection(GatewayCollection.Name)]
public sealed class WatchTests(GatewayFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Watch_renders_to_a_non_interactive_console_and_ends_with_the_completed_build()
    {
        var project = "watch-" + Guid.NewGuid().ToString("N")[..8];
        var env = fixture.Env(GatewayFixture.Token("watcher", project));
        await using var watch = CliProcess.Start(["watch", project, "--timeout", "120"], env);
        await watch.WaitForLineAsync(l => l.StartsWith($"watching {project}", StringComparison.Ordinal), Wait, "the watch to join");

        var (startExit, startOut, startErr) = await CliProcess.RunAsync(["build", "start", project, "--speed", "1000", "--seed", "3", "--deploy"], env);
        Assert.True(startExit == 0, startErr);
        Assert.StartsWith("build-", startOut.Trim(), StringComparison.Ordinal);

        var asked = await watch.WaitForLineAsync(l => l.StartsWith("decision ", StringComparison.Ordinal) && l.Contains(" asked: Which layout style do you prefer?", StringComparison.Ordinal), Wait, "the decision");
        var decisionId = asked.Split(' ')[1];
        var (decideExit, _, decideErr) = await CliProcess.RunAsync(["decide", decisionId, "option-1"], env);
        Assert.True(decideExit == 0, decideErr);

        Assert.Equal(0, await watch.WaitForExitAsync(Wait));
        var output = watch.Stdout;
        Assert.DoesNotContain('\u001b', output); // no ANSI escapes on a redirected console
        Assert.Contains("build running: phases analyze → design → generate → validate", output, StringComparison.Ordinal);
        foreach (var phase in new[] { "analyze", "design", "generate", "validate" })
        {
            Assert.Contains($"phase {phase} (", output, StringComparison.Ordinal);
        }

        foreach (var agent in new[] { "ui", "backend", "database", "integration" })
        {
            Assert.Contains($"agent {agent} completed 100%", output, StringComparison.Ordinal);
            Assert.Matches($"│ {agent} +│ completed", output);
        }

        Assert.Contains($"decision {decisionId} answered: option-1 (by user)", output, StringComparison.Ordinal);
        Assert.Matches("│ build +│ completed", output);
        Assert.Contains("████████████████████ 100%", output, StringComparison.Ordinal);
        Assert.Matches(@"^build completed in \d+ s \(componentsGenerated \d+, apiEndpointsCreated \d+, dataModelsCreated \d+\), preview http://127\.0\.0\.1:\d+/preview/", watch.Lines[^1]);
    }

    [Fact]
    public async Task Watch_with_deployment_waits_for_the_deployment_of_a_build_already_running()
    {
        var project = "deploy-" + Guid.NewGuid().ToString("N")[..8];
        var env = fixture.Env(GatewayFixture.Token("deployer", project));
        var (startExit, _, startErr) = await CliProcess.RunAsync(["build", "start", project, "--speed", "1000", "--deploy"], env);
        Assert.True(startExit == 0, startErr);

        // joins mid-build: the snapshot shows the build running (and the decision pending, if asked)
        await using var watch = CliProcess.Start(["watch", project, "--deployment", "--timeout", "120"], env);
        var asked = await watch.WaitForLineAsync(l => l.StartsWith("decision ", StringComparison.Ordinal) && l.Contains(" asked: ", StringComparison.Ordinal), Wait, "the decision");
        var (decideExit, _, decideErr) = await CliProcess.RunAsync(["decide", asked.Split(' ')[1], "option-2"], env);
        Assert.True(decideExit == 0, decideErr);

        Assert.Equal(0, await watch.WaitForExitAsync(Wait));
        Assert.Contains("deployment succeeded: https://", watch.Stdout, StringComparison.Ordinal);
        Assert.Contains("; deployment succeeded: ", watch.Lines[^1], StringComparison.Ordinal);
        Assert.StartsWith("build completed in ", watch.Lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_ends_with_exit_code_1_when_the_build_fails()
    {
        var project = "fail-" + Guid.NewGuid().ToString("N")[..8];
        var env = fixture.Env(GatewayFixture.Token("failer", project));
        await using var watch = CliProcess.Start(["watch", project, "--timeout", "120"], env);
        await watch.WaitForLineAsync(l => l.StartsWith($"watching {project}", StringComparison.Ordinal), Wait, "the watch to join");

        var (startExit, _, startErr) = await CliProcess.RunAsync(["build", "start", project, "--speed", "1000", "--faults", "[{\"kind\":\"fatal\",\"phase\":\"analyze\",\"agentType\":\"backend\",\"count\":1}]"], env);
        Assert.True(startExit == 0, startErr);

        Assert.Equal(1, await watch.WaitForExitAsync(Wait));
        Assert.StartsWith("build failed in phase analyze: ", watch.Lines[^1], StringComparison.Ordinal);
        Assert.Matches("│ build +│ failed", watch.Stdout);
    }

    [Fact]
    public async Task Watch_of_a_forbidden_project_exits_5()
    {
        var (exit, _, stderr) = await CliProcess.RunAsync(["watch", "someone-elses", "--timeout", "30"], fixture.Env(GatewayFixture.Token("nosy", "mine")));
        Assert.Equal(5, exit);
        Assert.Contains("join-project someone-elses refused: FORBIDDEN", stderr, StringComparison.Ordinal);
    }
}
