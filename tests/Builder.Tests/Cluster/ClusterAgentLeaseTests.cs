using Builder.Tests.Infrastructure;
using Builder.Tests.Runner;
using Cluster.Tests;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests.Cluster;

/// <summary>
/// Agent liveness leases across two in-process cluster nodes on one real redis-server and one fake
/// clock: an outside agent reports through one node, then another; when it goes silent, exactly
/// one node reports it failed, to the viewers of both.
/// </summary>
public sealed class ClusterAgentLeaseTests
{
    private const int LeaseSeconds = 8;

    private static Task<TestGateway> NodeAsync(RedisServer redis, FakeTimeProvider time) =>
        TestGateway.StartAsync(
            s =>
            {
                s.Remove("Builder:Store:Provider");
                s["Builder:Redis:Configuration"] = redis.Configuration;
                s["Builder:Heartbeat:IntervalSeconds"] = "100000";
                s["Builder:Runner:AgentLeaseSeconds"] = LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            },
            time);

    private static object Working(int progress) =>
        new { agentId = "agent-ext", agentType = "backend", status = "working", currentTask = "Generating the /api/orders endpoints", progress };

    private static bool IsFailed(ReceivedEvent e) => e.Name == "agent:status:update" && e.Payload().GetProperty("status").GetString() == "failed";

    [Fact]
    public async Task A_silent_agent_reporting_through_two_nodes_is_failed_once_by_one_of_them()
    {
        await using var redis = await RedisServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var nodeA = await NodeAsync(redis, time);
        await using var nodeB = await NodeAsync(redis, time);
        await using var alice = nodeA.Client(nodeA.Token("alice", ["agent-lease"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("agent-lease");
        await using var bob = nodeB.Client(nodeB.Token("bob", ["agent-lease"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("agent-lease");
        var db = redis.Connection.GetDatabase();

        // "working" through node A; later reports through node B renew the same lease
        await nodeA.PublishAsync("agent-lease", "agent:status:update", Working(10));
        for (var step = 1; step <= 3; step++)
        {
            time.Advance(TimeSpan.FromSeconds(LeaseSeconds - 2));
            await nodeB.PublishAsync("agent-lease", "agent:status:update", Working(10 + step));
            var expected = (time.GetUtcNow() + TimeSpan.FromSeconds(LeaseSeconds)).ToUnixTimeMilliseconds();
            await Deadline.UntilAsync(async () => await db.SortedSetScoreAsync("builder:agents:leases", "agent-lease agent-ext") >= expected, TestGateway.Wait, $"the renewal through node B ({step})");
        }

        foreach (var viewer in new[] { alice, bob })
        {
            await viewer.BarrierAsync();
            Assert.DoesNotContain(viewer.Drain("agent:status:update"), e => e.GetProperty("payload").GetProperty("status").GetString() == "failed");
        }

        // silent for longer than the lease: both nodes sweep, one reports it
        time.Advance(TimeSpan.FromSeconds(LeaseSeconds + 2));
        var seen = new List<List<ReceivedEvent>>();
        foreach (var viewer in new[] { alice, bob })
        {
            var events = await EventStream.ReadUntilAsync(viewer, IsFailed);
            var failed = events[^1].Payload();
            Assert.Equal("agent-ext", failed.GetProperty("agentId").GetString());
            Assert.Equal("backend", failed.GetProperty("agentType").GetString());
            Assert.Contains($"{LeaseSeconds} s", failed.GetProperty("message").GetString(), StringComparison.Ordinal);
            seen.Add(events);
        }

        // once: more sweeps, then a marker from each node after any second report
        time.Advance(TimeSpan.FromSeconds(LeaseSeconds * 3));
        await nodeA.PublishAsync("agent-lease", "agent:status:update", new { agentId = "marker-a", agentType = "ui", status = "idle" });
        await nodeB.PublishAsync("agent-lease", "agent:status:update", new { agentId = "marker-b", agentType = "ui", status = "idle" });
        for (var i = 0; i < 2; i++)
        {
            foreach (var (viewer, events) in new[] { alice, bob }.Zip(seen))
            {
                await EventStream.ReadUntilAsync(viewer, e => e.Name == "agent:status:update" && e.Payload().GetProperty("agentId").GetString()!.StartsWith("marker-", StringComparison.Ordinal), events);
            }
        }

        foreach (var events in seen)
        {
            Assert.Single(events, IsFailed);
        }
    }
}
