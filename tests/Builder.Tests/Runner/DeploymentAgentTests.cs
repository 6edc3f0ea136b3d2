using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>
/// The deployment stage is done by a deployment agent: its card (agent:status:update working →
/// completed, with progress and the task of each stage) and its output, alongside
/// deployment:progress/success; on the runner's fake clock.
/// </summary>
public sealed class DeploymentAgentTests
{
    [Fact]
    public async Task Deployment_agent_reports_its_card_and_output_alongside_the_deployment_events_in_order()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = gateway.Client(gateway.Token("alice", ["shop-deployer"]));
        await alice.ConnectAsync();
        var joinedSeq = (await alice.JoinAsync("shop-deployer")).GetProperty("seq").GetInt64();
        var startedAt = gateway.Time.GetUtcNow();
        await BuildApi.StartAsync(gateway, "shop-deployer", speed: FakePacing.Speed, deploy: true);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.True(events[^1].Name == "build:completed", EventStream.Describe(events));
        await EventStream.ReadUntilAsync(alice, e => e.Name is "deployment:success" or "deployment:failed", events, clock: gateway.Time);

        // the whole order: the build, then the deployment agent's card and the deployment's events (BuildAssertions.DeploymentAgent)
        BuildAssertions.Contiguous(events, "shop-deployer", after: joinedSeq);
        BuildAssertions.CompletedBuild(events, "shop-deployer", deployed: true);

        // on the runner's clock the deployment took at least its stages' time (8 + 6 + 3 simulated seconds at speed 1)
        var success = events[^1].Payload();
        Assert.True(success.GetProperty("duration").GetDouble() >= 17, success.GetRawText());
        Assert.True(gateway.Time.GetUtcNow() - startedAt >= TimeSpan.FromSeconds(17), "the fake clock moved less than the deployment's time");

        // a viewer joining now sees the deployment agent's card, completed, in the snapshot
        await using var bob = gateway.Client(gateway.Token("bob", ["shop-deployer"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("shop-deployer");
        var snapshot = await bob.NextAsync("project:snapshot");
        var card = Assert.Single(snapshot.GetProperty("agents").EnumerateArray(), a => a.GetProperty("agentId").GetString() == "agent-deployment");
        Assert.Equal("deployment", card.GetProperty("agentType").GetString());
        Assert.Equal("completed", card.GetProperty("status").GetString());
        Assert.Equal("succeeded", snapshot.GetProperty("deployment").GetProperty("state").GetString());
    }

    [Fact]
    public async Task The_runners_own_agents_the_deployment_agent_included_are_not_failed_by_agent_leases()
    {
        // a 1 s agent lease, while the agents (the deployment's stages: 4 s between reports) stay
        // silent for longer on the runner's clock: the build's own agents are ended by their
        // runner, never by the lease monitor
        await using var gateway = await FakePacing.StartGatewayAsync(s => s["Builder:Runner:AgentLeaseSeconds"] = "1");
        await using var alice = gateway.Client(gateway.Token("alice", ["shop-deployer-lease"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("shop-deployer-lease");
        await BuildApi.StartAsync(gateway, "shop-deployer-lease", speed: FakePacing.Speed, deploy: true);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        await EventStream.ReadUntilAsync(alice, e => e.Name is "deployment:success" or "deployment:failed", events, clock: gateway.Time);
        Assert.DoesNotContain(events, e => e.Name == "agent:status:update" && e.Payload().GetProperty("status").GetString() == "failed");
        BuildAssertions.CompletedBuild(events, "shop-deployer-lease", deployed: true);
    }

    [Fact]
    public async Task A_retried_deployment_agent_reports_its_error_then_works_again_to_completed()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = gateway.Client(gateway.Token("alice", ["shop-deployer-retry"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("shop-deployer-retry");
        await BuildApi.StartAsync(gateway, "shop-deployer-retry", speed: FakePacing.Speed, deploy: true, faults: [new { kind = "transient", phase = "deploy", count = 1 }]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        var completedAt = events.Count;
        await EventStream.ReadUntilAsync(alice, e => e.Name is "deployment:success" or "deployment:failed", events, clock: gateway.Time);
        var deployment = events.Skip(completedAt).ToList();
        Assert.True(deployment[^1].Name == "deployment:success", EventStream.Describe(deployment));

        var errorAt = Assert.Single(deployment.Select((e, i) => (e, i)), x => x.e.Name == "agent:error").i;
        var error = deployment[errorAt].Payload();
        Assert.Equal("agent-deployment", error.GetProperty("agentId").GetString());
        Assert.True(error.GetProperty("error").GetProperty("retryable").GetBoolean());
        Assert.Equal(1, error.GetProperty("error").GetProperty("retryCount").GetInt32());

        // before the error the card was working on the deploying stage; after it, it works again and completes
        var before = deployment.Take(errorAt).Where(e => e.Name == "agent:status:update").Select(e => e.Payload()).ToList();
        Assert.Contains("(deploying)", before[^1].GetProperty("message").GetString(), StringComparison.Ordinal);
        var after = deployment.Skip(errorAt + 1).Where(e => e.Name == "agent:status:update").Select(e => e.Payload().GetProperty("status").GetString()).ToList();
        Assert.Equal("working", after[0]);
        Assert.Equal("completed", after[^1]);
        Assert.Single(deployment, e => e.Name == "agent:output");
    }
}
