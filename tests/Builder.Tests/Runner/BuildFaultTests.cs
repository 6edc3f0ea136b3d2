using Builder.Runner;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests.Runner;

/// <summary>Injected agent faults: transient ones retried with agent:error retryCount, fatal ones and exhausted retries end the build with build:failed.</summary>
public sealed class BuildFaultTests
{
    private static async Task<BuilderClient> JoinedAsync(TestGateway gateway, string project)
    {
        var client = gateway.Client(gateway.Token("alice", [project]));
        await client.ConnectAsync();
        await client.JoinAsync(project);
        return client;
    }

    private static object Fault(string kind, string phase, string? agentType = null, int count = 1) => new { kind, phase, agentType, count };

    [Fact]
    public async Task Transient_errors_are_retried_and_the_build_completes()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-transient");
        await BuildApi.StartAsync(gateway, "shop-transient", speed: FakePacing.Speed, faults: [Fault("transient", "generate", "backend", count: 2)]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.True(events[^1].Name == "build:completed", "the build completes after the retries:\n" + EventStream.Describe(events));

        var errors = events.Payloads("agent:error");
        Assert.Equal(2, errors.Count);
        Assert.All(errors, e =>
        {
            Assert.Equal("agent-backend", e.GetProperty("agentId").GetString());
            Assert.Equal("backend", e.GetProperty("agentType").GetString());
            var error = e.GetProperty("error");
            Assert.False(string.IsNullOrEmpty(error.GetProperty("code").GetString()));
            Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
            Assert.True(error.TryGetProperty("details", out _), "details");
            Assert.True(error.GetProperty("retryable").GetBoolean());
        });
        Assert.Equal([1, 2], errors.Select(e => e.GetProperty("error").GetProperty("retryCount").GetInt32()));

        // the errors struck in generate, before the backend's output, which the third attempt produced
        var lastError = events.FindLastIndex(e => e.Name == "agent:error");
        var backendOutput = events.FindIndex(e => e.Name == "agent:output" && e.Payload().GetProperty("agentType").GetString() == "backend");
        Assert.True(backendOutput > lastError, "the backend output comes after its errors");
        var firstError = events.FindIndex(e => e.Name == "agent:error");
        var databaseOutput = events.FindIndex(e => e.Name == "agent:output" && e.Payload().GetProperty("agentType").GetString() == "database");
        Assert.True(databaseOutput >= 0 && databaseOutput < firstError, "the backend fails in generate, after the database's migrations");

        var withoutErrors = events.Where(e => e.Name != "agent:error").ToList();
        BuildAssertions.CompletedBuild(withoutErrors, "shop-transient", deployed: false);
        Assert.Equal(15 + 2, BuildAssertions.Output(events, "backend").GetProperty("endpoints").GetArrayLength());
    }

    [Fact]
    public async Task Fatal_error_fails_the_build_in_its_phase_with_suggestions()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-fatal");
        var buildId = await BuildApi.StartAsync(gateway, "shop-fatal", speed: FakePacing.Speed, faults: [Fault("fatal", "generate", "backend")]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.True(events[^1].Name == "build:failed", "the build fails:\n" + EventStream.Describe(events));
        var failed = events[^1].Payload();
        Assert.Equal("shop-fatal", failed.GetProperty("projectId").GetString());
        Assert.Equal(buildId, failed.GetProperty("buildId").GetString());
        var error = failed.GetProperty("error");
        Assert.Equal("generate", error.GetProperty("phase").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.True(error.TryGetProperty("details", out _), "details");
        var suggestions = error.GetProperty("suggestions").EnumerateArray().Select(s => s.GetString()).ToList();
        Assert.NotEmpty(suggestions);
        Assert.All(suggestions, s => Assert.False(string.IsNullOrWhiteSpace(s)));

        // one error, not retryable; the backend card shows the failure
        var agentError = Assert.Single(events.Payloads("agent:error"));
        Assert.Equal("backend", agentError.GetProperty("agentType").GetString());
        Assert.False(agentError.GetProperty("error").GetProperty("retryable").GetBoolean());
        Assert.Equal(1, agentError.GetProperty("error").GetProperty("retryCount").GetInt32());
        var backendLast = events.Payloads("agent:status:update").Last(p => p.GetProperty("agentId").GetString() == "agent-backend");
        Assert.Equal("failed", backendLast.GetProperty("status").GetString());

        await AssertEndedWithoutCompletionAsync(gateway, alice, "shop-fatal");
    }

    [Fact]
    public async Task More_transient_errors_than_retries_fail_the_build()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-exhausted");
        var maxRetries = gateway.Services.GetRequiredService<RunnerOptions>().MaxRetries;
        Assert.Equal(3, maxRetries);
        await BuildApi.StartAsync(gateway, "shop-exhausted", speed: FakePacing.Speed, faults: [Fault("transient", "generate", "backend", count: maxRetries + 2)]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.True(events[^1].Name == "build:failed", "the build fails once the retries are exhausted:\n" + EventStream.Describe(events));
        var error = events[^1].Payload().GetProperty("error");
        Assert.Equal("generate", error.GetProperty("phase").GetString());
        Assert.NotEmpty(error.GetProperty("suggestions").EnumerateArray());

        // the first attempt and every retry reported, then no more attempts
        var errors = events.Payloads("agent:error");
        Assert.Equal(Enumerable.Range(1, maxRetries + 1), errors.Select(e => e.GetProperty("error").GetProperty("retryCount").GetInt32()));
        Assert.All(errors, e => Assert.Equal("backend", e.GetProperty("agentType").GetString()));
        Assert.DoesNotContain(events.Payloads("agent:output"), p => p.GetProperty("agentType").GetString() == "backend");

        await AssertEndedWithoutCompletionAsync(gateway, alice, "shop-exhausted");
    }

    [Fact]
    public async Task Fatal_error_ends_the_build_without_waiting_for_the_other_agents_of_its_phase()
    {
        // the database agent fails at the start of design, while the UI agent of the same phase
        // asks the user a question that nobody answers
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-fatal-design");
        var startedAt = gateway.Time.GetUtcNow();
        await BuildApi.StartAsync(gateway, "shop-fatal-design", speed: FakePacing.Speed, faults: [Fault("fatal", "design", "database")]);

        var events = await EventStream.ReadUntilAsync(alice, e => e.Name is "build:failed" or "build:completed", wait: TimeSpan.FromSeconds(10), clock: gateway.Time);
        Assert.Equal("build:failed", events[^1].Name);

        // on the runner's clock: ended in the analyze phase's time, long before the question's 300 s timeout
        var took = gateway.Time.GetUtcNow() - startedAt;
        Assert.True(took < TimeSpan.FromSeconds(60), $"the failed build ended only after {took.TotalSeconds} s of the runner's clock");
        Assert.Equal("design", events[^1].Payload().GetProperty("error").GetProperty("phase").GetString());
        Assert.Equal("database", Assert.Single(events.Payloads("agent:error")).GetProperty("agentType").GetString());

        // and the question of a build that failed is not left open
        await gateway.Services.GetRequiredService<BuildRunner>().WhenFinishedAsync("shop-fatal-design").WaitAsync(TestGateway.Wait);
        await using var bob = gateway.Client(gateway.Token("bob", ["shop-fatal-design"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("shop-fatal-design");
        var snapshot = await bob.NextAsync("project:snapshot");
        Assert.Equal("failed", snapshot.GetProperty("build").GetProperty("state").GetString());
        Assert.Equal(0, snapshot.GetProperty("pendingDecisions").GetArrayLength());
    }

    [Fact]
    public async Task Failed_deployment_ends_with_deployment_failed_after_a_completed_build()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-deploy-fails");
        await BuildApi.StartAsync(gateway, "shop-deploy-fails", speed: FakePacing.Speed, deploy: true, faults: [Fault("fatal", "deploy")]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.True(events[^1].Name == "build:completed", EventStream.Describe(events));
        var completedAt = events.Count;
        await EventStream.ReadUntilAsync(alice, e => e.Name is "deployment:failed" or "deployment:success", events, clock: gateway.Time);
        var afterBuild = events.Skip(completedAt).ToList();

        // the deployment agent's failure is reported like any agent's, then the deployment ends
        var agentError = Assert.Single(afterBuild, e => e.Name == "agent:error");
        Assert.Equal("deployment", agentError.Payload().GetProperty("agentType").GetString());
        Assert.False(agentError.Payload().GetProperty("error").GetProperty("retryable").GetBoolean());
        Assert.Equal("agent-deployment", agentError.Payload().GetProperty("agentId").GetString());

        // its card: working from the start of the deployment, failed after its error, before deployment:failed
        var card = afterBuild.Where(e => e.Name == "agent:status:update").Select(e => e.Payload()).ToList();
        Assert.All(card, p => Assert.Equal("agent-deployment", p.GetProperty("agentId").GetString()));
        Assert.Equal("working", card[0].GetProperty("status").GetString());
        Assert.Equal("failed", card[^1].GetProperty("status").GetString());
        var failedCardAt = afterBuild.FindLastIndex(e => e.Name == "agent:status:update");
        Assert.True(failedCardAt > afterBuild.IndexOf(agentError) && failedCardAt == afterBuild.Count - 2, "agent:error, then the card failed, then deployment:failed:\n" + EventStream.Describe(afterBuild));
        var deployment = afterBuild.Where(e => e.Name.StartsWith("deployment:", StringComparison.Ordinal)).ToList();
        Assert.True(deployment[^1].Name == "deployment:failed", EventStream.Describe(deployment));
        Assert.All(deployment.SkipLast(1), e => Assert.Equal("deployment:progress", e.Name));
        Assert.NotEmpty(deployment.SkipLast(1));
        Assert.Equal("building", deployment[0].Payload().GetProperty("stage").GetString());

        var failed = deployment[^1].Payload();
        Assert.Equal(deployment[0].Payload().GetProperty("deploymentId").GetString(), failed.GetProperty("deploymentId").GetString());
        Assert.Equal("test", failed.GetProperty("environment").GetString());
        var error = failed.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.NotEmpty(error.GetProperty("suggestions").EnumerateArray());

        await gateway.Services.GetRequiredService<BuildRunner>().WhenFinishedAsync("shop-deploy-fails").WaitAsync(TestGateway.Wait);
        await alice.BarrierAsync();
        Assert.DoesNotContain(alice.DrainAll(), e => e.Name is "deployment:success" or "deployment:progress" or "build:failed");
    }

    /// <summary>Nothing follows build:failed, and the project takes a new build.</summary>
    private static async Task AssertEndedWithoutCompletionAsync(TestGateway gateway, BuilderClient client, string project)
    {
        await gateway.Services.GetRequiredService<BuildRunner>().WhenFinishedAsync(project).WaitAsync(TestGateway.Wait);
        await client.BarrierAsync();
        var after = client.DrainAll().Where(EventStream.IsEnvelope).ToList();
        Assert.True(after.Count == 0, "events after build:failed:\n" + EventStream.Describe(after));
        Assert.Null(gateway.Services.GetRequiredService<BuildRunner>().RunningBuildId(project));
        await BuildApi.StartAsync(gateway, project, speed: FakePacing.Speed);
    }
}
