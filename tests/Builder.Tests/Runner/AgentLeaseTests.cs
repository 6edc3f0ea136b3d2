using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>
/// Agents outside the process (publishing over HTTP) hold a liveness lease while "working": one
/// that goes silent for Builder:Runner:AgentLeaseSeconds is reported "failed". The monitor sweeps
/// on the injected clock's timer, so advancing the fake clock runs it.
/// </summary>
public sealed class AgentLeaseTests
{
    private const int LeaseSeconds = 10;

    private static object Working(string agentId, int progress) =>
        new { agentId, agentType = "backend", status = "working", currentTask = "Generating the /api/orders endpoints", progress };

    [Fact]
    public async Task Silent_working_agent_is_failed_when_its_lease_expires_and_a_report_renews_it()
    {
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Heartbeat:IntervalSeconds"] = "100000";
            s["Builder:Runner:AgentLeaseSeconds"] = LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        await using var alice = gateway.Client(gateway.Token("alice", ["lease-p"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("lease-p");

        await gateway.PublishAsync("lease-p", "agent:status:update", Working("agent-ext-1", 10));
        // an agent that finished holds no lease
        await gateway.PublishAsync("lease-p", "agent:status:update", Working("agent-ext-2", 50));
        await gateway.PublishAsync("lease-p", "agent:status:update", new { agentId = "agent-ext-2", agentType = "database", status = "completed", progress = 100 });
        var events = await EventStream.ReadUntilAsync(alice, e => e.Name == "agent:status:update" && e.Payload().GetProperty("status").GetString() == "completed");
        Assert.Equal(3, events.Count);

        // within the lease nothing happens; a report renews it
        gateway.Time.Advance(TimeSpan.FromSeconds(LeaseSeconds - 2));
        await AssertNoFailureAsync(gateway, alice, events);
        await gateway.PublishAsync("lease-p", "agent:status:update", Working("agent-ext-1", 40));
        await EventStream.ReadUntilAsync(alice, "agent:status:update", events);

        gateway.Time.Advance(TimeSpan.FromSeconds(LeaseSeconds - 2));
        await AssertNoFailureAsync(gateway, alice, events);

        // silent for longer than the lease since its last report
        gateway.Time.Advance(TimeSpan.FromSeconds(3));
        await EventStream.ReadUntilAsync(alice, e => e.Name == "agent:status:update" && e.Payload().GetProperty("status").GetString() == "failed", events);
        var failed = events[^1].Payload();
        Assert.Equal("agent-ext-1", failed.GetProperty("agentId").GetString());
        Assert.Equal("backend", failed.GetProperty("agentType").GetString());
        var message = failed.GetProperty("message").GetString()!;
        Assert.Contains("lease", message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains($"{LeaseSeconds} s", message, StringComparison.Ordinal);

        // reported once; the finished agent never
        gateway.Time.Advance(TimeSpan.FromSeconds(LeaseSeconds * 3));
        await AssertNoFailureAsync(gateway, alice, events);

        // the snapshot shows the card as failed
        await using var bob = gateway.Client(gateway.Token("bob", ["lease-p"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("lease-p");
        var snapshot = await bob.NextAsync("project:snapshot");
        var agents = snapshot.GetProperty("agents").EnumerateArray().ToDictionary(a => a.GetProperty("agentId").GetString()!, a => a.GetProperty("status").GetString());
        Assert.Equal("failed", agents["agent-ext-1"]);
        Assert.Equal("completed", agents["agent-ext-2"]);
    }

    /// <summary>
    /// No "failed" came: a marker published after the clock moved arrives with nothing before it.
    /// (The sweep that runs in Advance takes the lease before it publishes, so a failure would be logged first.)
    /// </summary>
    private static async Task AssertNoFailureAsync(TestGateway gateway, BuilderClient client, List<ReceivedEvent> events)
    {
        var marker = "marker-" + Guid.NewGuid().ToString("N")[..8];
        await gateway.PublishAsync("lease-p", "agent:status:update", new { agentId = marker, agentType = "ui", status = "idle" });
        var count = events.Count;
        await EventStream.ReadUntilAsync(client, e => e.Name == "agent:status:update" && e.Payload().GetProperty("agentId").GetString() == marker, events);
        Assert.True(events.Count == count + 1, "unexpected events:\n" + EventStream.Describe(events.Skip(count)));
    }
}
