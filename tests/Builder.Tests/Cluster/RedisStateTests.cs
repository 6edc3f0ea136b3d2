using Builder.Events;
using Builder.Runner;
using Builder.Tests.Infrastructure;
using Cluster.Tests;
using StackExchange.Redis;

namespace Builder.Tests.Cluster;

/// <summary>
/// The Redis implementations of the decisions, the build leases and the agent leases against a
/// real redis-server: two instances on one Redis are two nodes, each on its own connection.
/// </summary>
public sealed class RedisStateTests
{
    private static readonly DateTimeOffset s_t0 = new(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);

    private static StoredDecision Decision(string projectId, DateTimeOffset deadline) => new(
        "decision-" + Guid.NewGuid().ToString("N"),
        projectId,
        "agent-1",
        "Which layout style do you prefer?",
        [new DecisionOption("option-1", "Modern"), new DecisionOption("option-2", "Classic")],
        60,
        "option-1",
        deadline.AddSeconds(-60),
        deadline,
        null);

    [Fact]
    public async Task Two_nodes_resolving_one_decision_at_once_store_exactly_one_and_the_loser_hears_of_the_winner()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connectionA = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        await using var connectionB = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        using var nodeA = new RedisDecisionStore(connectionA);
        using var nodeB = new RedisDecisionStore(connectionB);
        var heardByA = new System.Collections.Concurrent.ConcurrentQueue<DecisionResolution>();
        var heardByB = new System.Collections.Concurrent.ConcurrentQueue<DecisionResolution>();
        ((IDecisionStore)nodeA).ResolvedElsewhere += (_, r) => heardByA.Enqueue(r);
        ((IDecisionStore)nodeB).ResolvedElsewhere += (_, r) => heardByB.Enqueue(r);
        await Task.WhenAll(nodeA.Subscribed, nodeB.Subscribed).WaitAsync(TestGateway.Wait);

        const int rounds = 20;
        var winners = new List<DecisionResolution>();
        for (var round = 0; round < rounds; round++)
        {
            var decision = Decision("race-p", s_t0.AddMinutes(5));
            await nodeA.SaveAsync(decision);
            Assert.Single(await nodeB.LoadPendingAsync("race-p"));
            var byAlice = new DecisionResolution(decision.DecisionId, "option-1", "user", "alice", null, s_t0);
            var byBob = new DecisionResolution(decision.DecisionId, "option-2", "user", "bob", null, s_t0);
            var results = await Task.WhenAll(Task.Run(() => nodeA.TryResolveAsync(decision.DecisionId, byAlice).AsTask()), Task.Run(() => nodeB.TryResolveAsync(decision.DecisionId, byBob).AsTask()));
            Assert.Equal(1, results.Count(r => r));
            var winner = results[0] ? byAlice : byBob;
            winners.Add(winner);

            // both nodes read the same one resolution; nothing is left pending; a late answer loses
            Assert.Equal(winner, (await nodeA.LoadAsync(decision.DecisionId))!.Resolution);
            Assert.Equal(winner, (await nodeB.LoadAsync(decision.DecisionId))!.Resolution);
            Assert.Empty(await nodeA.LoadPendingAsync("race-p"));
            Assert.False(await nodeB.TryResolveAsync(decision.DecisionId, byBob with { ResolvedBy = "timeout" }));
        }

        // each node heard of exactly the resolutions the other node won
        await Deadline.UntilAsync(() => Task.FromResult(heardByA.Count + heardByB.Count == rounds), TestGateway.Wait, "every resolution announced to the other node");
        Assert.Equal(winners.Where(w => w.UserId == "bob").Select(w => w.DecisionId).Order(), heardByA.Select(r => r.DecisionId).Order());
        Assert.Equal(winners.Where(w => w.UserId == "alice").Select(w => w.DecisionId).Order(), heardByB.Select(r => r.DecisionId).Order());
        Assert.False(await nodeA.TryResolveAsync("decision-unknown", winners[0]));
    }

    [Fact]
    public async Task Due_decisions_are_those_past_their_deadline()
    {
        await using var redis = await RedisServer.StartAsync();
        using var store = new RedisDecisionStore(redis.Connection);
        var soon = Decision("due-p", s_t0.AddSeconds(10));
        var later = Decision("due-p", s_t0.AddSeconds(100));
        await store.SaveAsync(soon);
        await store.SaveAsync(later);

        Assert.Empty(await store.LoadDueAsync(s_t0));
        Assert.Equal([soon.DecisionId], (await store.LoadDueAsync(s_t0.AddSeconds(10))).Select(d => d.DecisionId));
        Assert.True(await store.TryResolveAsync(soon.DecisionId, new DecisionResolution(soon.DecisionId, "option-1", "timeout", null, null, s_t0.AddSeconds(10))));
        Assert.Equal([later.DecisionId], (await store.LoadDueAsync(s_t0.AddSeconds(200))).Select(d => d.DecisionId));
    }

    [Fact]
    public async Task One_build_per_project_across_nodes_and_an_expired_lease_is_claimed_by_one_node()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connectionB = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        using var nodeA = new RedisBuildLeases(redis.Connection);
        using var nodeB = new RedisBuildLeases(connectionB);
        var lease = TimeSpan.FromSeconds(15);
        await Task.WhenAll(nodeA.Subscribed, nodeB.Subscribed).WaitAsync(TestGateway.Wait);
        var first = new BuildRecord("build-a1", "shop", "running", BuildPhases.Analyze, s_t0);

        Assert.Null(await nodeA.TryAcquireAsync(first, s_t0 + lease));
        Assert.Equal("build-a1", await nodeB.TryAcquireAsync(first with { BuildId = "build-b1" }, s_t0 + lease));
        Assert.Null(await nodeB.TryAcquireAsync(new BuildRecord("build-b2", "other", "running", BuildPhases.Analyze, s_t0), s_t0 + lease));

        // renewed within its lease: nobody claims it
        Assert.True(await nodeA.RenewAsync(first with { Phase = BuildPhases.Design }, s_t0.AddSeconds(10) + lease));
        Assert.Empty(await nodeB.ClaimExpiredAsync(s_t0 + lease - TimeSpan.FromSeconds(1)));

        // a cancellation asked on node B reaches node A, which runs the build
        var cancelled = new TaskCompletionSource<(string, string, string)>(TaskCreationOptions.RunContinuationsAsynchronously);
        nodeA.CancelRequested += (p, b, by) => cancelled.TrySetResult((p, b, by));
        Assert.True(await nodeB.RequestCancelAsync("shop", "build-a1", "bob"));
        Assert.Equal(("shop", "build-a1", "bob"), await cancelled.Task.WaitAsync(TestGateway.Wait));
        Assert.False(await nodeB.RequestCancelAsync("shop", "build-zz", "bob"));

        // node A stops renewing: past the lease both nodes sweep at once, one claims it
        var late = s_t0.AddSeconds(10) + lease + TimeSpan.FromSeconds(1);
        var claims = await Task.WhenAll(Task.Run(() => nodeA.ClaimExpiredAsync(late).AsTask()), Task.Run(() => nodeB.ClaimExpiredAsync(late).AsTask()));
        var claimed = Assert.Single(claims.SelectMany(c => c), b => b.ProjectId == "shop");
        Assert.Equal("build-a1", claimed.BuildId);
        Assert.Equal(BuildPhases.Design, claimed.Phase);

        // the claimed build's node learns it lost its lease; the project takes a new build
        Assert.False(await nodeA.RenewAsync(first, late + lease));
        Assert.Null(await nodeB.TryAcquireAsync(first with { BuildId = "build-b3" }, late + lease));
        await nodeB.ReleaseAsync(first with { BuildId = "build-b3", State = "completed" });
        Assert.Null(await nodeA.TryAcquireAsync(first with { BuildId = "build-a4" }, late + lease));
    }

    [Fact]
    public async Task Agent_leases_are_shared_and_an_expired_one_is_failed_by_one_node()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var connectionB = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var nodeA = new RedisAgentLeases(redis.Connection);
        var nodeB = new RedisAgentLeases(connectionB);
        static bool None(string p, string a) => false;

        var db = redis.Connection.GetDatabase();
        nodeA.Touch("p", "agent-done", "ui", s_t0.AddSeconds(10), onlyIfHeld: false);
        nodeA.Release("p", "agent-done");
        nodeA.Touch("p", "agent-x", "backend", s_t0.AddSeconds(10), onlyIfHeld: false);
        await Deadline.UntilAsync(async () => (await db.SortedSetScoreAsync("builder:agents:leases", "p agent-x")) is not null, TestGateway.Wait, "the lease");
        nodeB.Touch("p", "agent-never", "ui", s_t0.AddSeconds(50), onlyIfHeld: true);

        // reported on node B later: the lease node A took is extended
        nodeB.Touch("p", "agent-x", "backend", s_t0.AddSeconds(20), onlyIfHeld: true);
        await Deadline.UntilAsync(async () => (await db.SortedSetScoreAsync("builder:agents:leases", "p agent-x")) == s_t0.AddSeconds(20).ToUnixTimeMilliseconds(), TestGateway.Wait, "the renewal");
        Assert.Empty(await nodeA.ClaimExpiredAsync(s_t0.AddSeconds(15), None));
        Assert.Empty(await nodeA.ClaimExpiredAsync(s_t0.AddSeconds(25), (_, agent) => agent == "agent-x"));

        var claims = await Task.WhenAll(Task.Run(() => nodeA.ClaimExpiredAsync(s_t0.AddSeconds(100), None).AsTask()), Task.Run(() => nodeB.ClaimExpiredAsync(s_t0.AddSeconds(100), None).AsTask()));
        var claimed = Assert.Single(claims.SelectMany(c => c));
        Assert.Equal(new AgentLease("p", "agent-x", "backend"), claimed);
    }
}
