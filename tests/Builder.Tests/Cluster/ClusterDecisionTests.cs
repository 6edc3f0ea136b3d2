using System.Text.Json;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests.Cluster;

/// <summary>
/// Decisions on several gateway nodes (in-process, each a cluster node on one real redis-server,
/// sharing one fake clock): the first answer wins on whichever node it arrives, the default is
/// applied once, a long-poll on one node is woken by an answer on another, a pending decision
/// survives the restart of the node that asked it.
/// </summary>
public sealed class ClusterDecisionTests
{
    private static Task<TestGateway> NodeAsync(RedisServer redis, FakeTimeProvider time) =>
        TestGateway.StartAsync(
            s =>
            {
                s.Remove("Builder:Store:Provider");
                s["Builder:Redis:Configuration"] = redis.Configuration;
                s["Builder:Heartbeat:IntervalSeconds"] = "100000";
            },
            time);

    private static async Task<BuilderClient> ViewerAsync(TestGateway node, string userId, string projectId)
    {
        var client = node.Client(node.Token(userId, [projectId]));
        await client.ConnectAsync();
        await client.JoinAsync(projectId);
        return client;
    }

    /// <summary>Every event either node published before now has reached the viewer (a marker from each node, then the viewer's barrier).</summary>
    private static async Task SettledAsync(BuilderClient viewer, string projectId, params TestGateway[] nodes)
    {
        foreach (var node in nodes)
        {
            await node.PublishAsync(projectId, "agent:status:update", new { agentId = "agent-marker", agentType = "ui", status = "idle" });
        }

        for (var i = 0; i < nodes.Length; i++)
        {
            await viewer.NextAsync("agent:status:update");
        }

        await viewer.BarrierAsync();
    }

    [Fact]
    public async Task Two_users_on_two_nodes_answering_at_once_resolve_it_once_everywhere()
    {
        await using var redis = await RedisServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var nodeA = await NodeAsync(redis, time);
        await using var nodeB = await NodeAsync(redis, time);
        await using var alice = await ViewerAsync(nodeA, "alice", "cd-race");
        await using var bob = await ViewerAsync(nodeB, "bob", "cd-race");

        for (var round = 0; round < 5; round++)
        {
            var decisionId = await (round % 2 == 0 ? nodeA : nodeB).CreateDecisionAsync("cd-race", TestGateway.TwoOptionDecision());
            await alice.NextAsync("user:decision:required");
            await bob.NextAsync("user:decision:required");

            var answers = await Task.WhenAll(
                alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" }),
                bob.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2" }));
            Assert.Equal(1, answers.Count(a => a.GetProperty("ok").GetBoolean()));
            var aliceWon = answers[0].GetProperty("ok").GetBoolean();
            Assert.Equal("DECISION_ALREADY_RESOLVED", answers[aliceWon ? 1 : 0].GetProperty("error").GetProperty("code").GetString());

            // each viewer, on either node, sees the one resolution
            foreach (var viewer in new[] { alice, bob })
            {
                var resolved = await viewer.NextAsync("user:decision:resolved");
                Assert.Equal(decisionId, resolved.GetProperty("payload").GetProperty("decisionId").GetString());
                Assert.Equal(aliceWon ? "option-1" : "option-2", resolved.GetProperty("payload").GetProperty("selectedOptionId").GetString());
                Assert.Equal(aliceWon ? "alice" : "bob", resolved.GetProperty("payload").GetProperty("userId").GetString());
            }

            // and both nodes' API reads it
            foreach (var node in new[] { nodeA, nodeB })
            {
                var (status, body) = await node.GetDecisionAsync(decisionId);
                Assert.Equal(200, status);
                Assert.Equal("resolved", body.GetProperty("status").GetString());
                Assert.Equal(aliceWon ? "alice" : "bob", body.GetProperty("resolution").GetProperty("userId").GetString());
            }
        }

        foreach (var viewer in new[] { alice, bob })
        {
            await SettledAsync(viewer, "cd-race", nodeA, nodeB);
            Assert.Equal(0, viewer.Pending("user:decision:resolved"));
        }
    }

    [Fact]
    public async Task The_timeout_default_is_applied_once_with_several_nodes()
    {
        await using var redis = await RedisServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var nodeA = await NodeAsync(redis, time);
        await using var nodeB = await NodeAsync(redis, time);
        await using var nodeC = await NodeAsync(redis, time);
        await using var alice = await ViewerAsync(nodeA, "alice", "cd-timeout");
        await using var carol = await ViewerAsync(nodeC, "carol", "cd-timeout");

        // asked on node A (which arms a timer); nodes B and C know it only from Redis
        var decisionId = await nodeA.CreateDecisionAsync("cd-timeout", TestGateway.TwoOptionDecision(timeout: 30, defaultOptionId: "option-2"));
        await alice.NextAsync("user:decision:required");
        await carol.NextAsync("user:decision:required");

        // node B waits on it too (it arms its own timer for it)
        var waiting = nodeB.GetDecisionAsync(decisionId, wait: 120);
        await nodeB.LongPollWaiting.WaitAsync(TestGateway.Wait);

        time.Advance(TimeSpan.FromSeconds(31));
        foreach (var viewer in new[] { alice, carol })
        {
            var resolved = await viewer.NextAsync("user:decision:resolved");
            Assert.Equal("timeout", resolved.GetProperty("payload").GetProperty("resolvedBy").GetString());
            Assert.Equal("option-2", resolved.GetProperty("payload").GetProperty("selectedOptionId").GetString());
        }

        var (status, body) = await waiting.WaitAsync(TestGateway.Wait);
        Assert.Equal(200, status);
        Assert.Equal("timeout", body.GetProperty("resolution").GetProperty("resolvedBy").GetString());

        // more time and every node's sweep: still once
        time.Advance(TimeSpan.FromSeconds(5));
        foreach (var viewer in new[] { alice, carol })
        {
            await SettledAsync(viewer, "cd-timeout", nodeA, nodeB, nodeC);
            Assert.Equal(0, viewer.Pending("user:decision:resolved"));
        }
    }

    [Fact]
    public async Task A_long_poll_on_one_node_is_answered_by_an_answer_on_another()
    {
        await using var redis = await RedisServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var nodeA = await NodeAsync(redis, time);
        await using var nodeB = await NodeAsync(redis, time);
        await using var alice = await ViewerAsync(nodeA, "alice", "cd-wait");

        var decisionId = await nodeA.CreateDecisionAsync("cd-wait", TestGateway.TwoOptionDecision(timeout: 300));
        await alice.NextAsync("user:decision:required");
        var waiting = nodeB.GetDecisionAsync(decisionId, wait: 60);
        await nodeB.LongPollWaiting.WaitAsync(TestGateway.Wait);
        Assert.False(waiting.IsCompleted);

        var ack = await alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2", feedback = "from node A" });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());

        // answered without the clock moving: woken by the resolution made on node A
        var (status, body) = await waiting.WaitAsync(TestGateway.Wait);
        Assert.Equal(200, status);
        Assert.Equal("resolved", body.GetProperty("status").GetString());
        Assert.Equal("option-2", body.GetProperty("resolution").GetProperty("selectedOptionId").GetString());
        Assert.Equal("from node A", body.GetProperty("resolution").GetProperty("feedback").GetString());
    }

    [Fact]
    public async Task A_pending_decision_survives_the_restart_of_the_node_that_asked_it()
    {
        await using var redis = await RedisServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        string decisionId;
        await using (var first = await NodeAsync(redis, time))
        {
            decisionId = await first.CreateDecisionAsync("cd-restart", TestGateway.TwoOptionDecision(timeout: 60));
        }

        await using var second = await NodeAsync(redis, time);
        var (status, body) = await second.GetDecisionAsync(decisionId);
        Assert.Equal(200, status);
        Assert.Equal("pending", body.GetProperty("status").GetString());
        await using var alice = await ViewerAsync(second, "alice", "cd-restart");
        var snapshot = await alice.NextAsync("project:snapshot");
        Assert.Contains(decisionId, snapshot.GetRawText(), StringComparison.Ordinal);

        // the restarted node re-armed its deadline
        time.Advance(TimeSpan.FromSeconds(61));
        var resolved = await alice.NextAsync("user:decision:resolved");
        Assert.Equal(decisionId, resolved.GetProperty("payload").GetProperty("decisionId").GetString());
        Assert.Equal("timeout", resolved.GetProperty("payload").GetProperty("resolvedBy").GetString());
        (status, body) = await second.GetDecisionAsync(decisionId);
        Assert.Equal("resolved", body.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Object, body.GetProperty("resolution").ValueKind);
    }
}
