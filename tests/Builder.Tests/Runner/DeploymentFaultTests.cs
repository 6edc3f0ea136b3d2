using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>Transient deployment faults are retried like agents' are; identical faults each count.</summary>
public sealed class DeploymentFaultTests
{
    private static object Fault(string kind, string phase, string? agentType = null, int count = 1) => new { kind, phase, agentType, count };

    private static async Task<BuilderClient> JoinedAsync(TestGateway gateway, string project)
    {
        var client = gateway.Client(gateway.Token("alice", [project]));
        await client.ConnectAsync();
        await client.JoinAsync(project);
        return client;
    }

    [Fact]
    public async Task A_transient_deployment_fault_is_retried_then_the_deployment_succeeds()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-deploy-retry");
        await BuildApi.StartAsync(gateway, "shop-deploy-retry", speed: FakePacing.Speed, deploy: true, faults: [Fault("transient", "deploy", count: 2)]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.Equal("build:completed", events[^1].Name);
        await EventStream.ReadUntilAsync(alice, e => e.Name is "deployment:success" or "deployment:failed", events, clock: gateway.Time);
        Assert.Equal("deployment:success", events[^1].Name);
        var retries = events.Payloads("agent:error").Where(p => p.GetProperty("agentType").GetString() == "deployment").ToList();
        Assert.Equal([1, 2], retries.Select(p => p.GetProperty("error").GetProperty("retryCount").GetInt32()));
        Assert.All(retries, p => Assert.True(p.GetProperty("error").GetProperty("retryable").GetBoolean()));
    }

    [Fact]
    public async Task Two_identical_transient_faults_fail_twice_as_many_attempts()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-double-fault");
        var fault = Fault("transient", "generate", "backend", count: 1);
        await BuildApi.StartAsync(gateway, "shop-double-fault", speed: FakePacing.Speed, faults: [fault, fault]);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: gateway.Time);
        Assert.Equal("build:completed", events[^1].Name);
        Assert.Equal([1, 2], events.Payloads("agent:error").Select(p => p.GetProperty("error").GetProperty("retryCount").GetInt32()));
    }
}
