using Builder.Events;
using Builder.Tests.Infrastructure;

namespace Builder.Tests.Cluster;

/// <summary>
/// The feed of a cluster node (every project's events come to a node on one Redis channel, one
/// message at a time): a project that is busy (a join switching it to live, reading the log)
/// holds back its own events only, never the other projects' on the node.
/// </summary>
public sealed class ClusterFeedTests
{
    private static object Status(string task) => new { agentId = "agent-1", agentType = "ui", status = "working", currentTask = task };

    [Fact]
    public async Task A_join_held_in_the_log_delays_its_own_project_only_and_loses_nothing()
    {
        await using var redis = await RedisServer.StartAsync();
        var hold = new LogHold();
        await using var node = await TestGateway.StartAsync(
            s =>
            {
                s.Remove("Builder:Store:Provider");
                s["Builder:Redis:Configuration"] = redis.Configuration;
                s["Builder:Heartbeat:IntervalSeconds"] = "100000";
            },
            services: collection => EventLogProxy.Decorate(collection, (log, method, args) =>
                method.Name == nameof(IEventLog.LatestSeqAsync) && args is [string projectId, CancellationToken token] && FromSwitchToLive() && hold.TryTake(projectId)
                    ? new ValueTask<long>(HeldAsync(log, hold, projectId, token))
                    : null));

        await using var alice = node.Client(node.Token("alice", ["feed-a"]));
        await alice.ConnectAsync();
        await alice.JoinAsync("feed-a");
        await using var bob = node.Client(node.Token("bob", ["feed-b"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("feed-b");
        await node.PublishAsync("feed-a", "agent:status:update", Status("a-1"));
        Assert.Equal("a-1", (await alice.NextAsync("agent:status:update")).GetProperty("payload").GetProperty("currentTask").GetString());

        // carol joins feed-a; her join's switch to live (under the project's lock on this node) is
        // held in the log
        hold.Arm("feed-a");
        await using var carol = node.Client(node.Token("carol", ["feed-a"]));
        await carol.ConnectAsync();
        var carolJoins = carol.JoinAsync("feed-a", lastSeq: 1);
        await hold.Entered.WaitAsync(TestGateway.Wait);

        // an event of feed-a reaches the node's feed first, then one of feed-b: feed-b's viewer gets
        // it now, while feed-a's waits for the join
        await node.PublishAsync("feed-a", "agent:status:update", Status("a-2"));
        await node.PublishAsync("feed-b", "agent:status:update", Status("b-1"));
        Assert.Equal("b-1", (await bob.NextAsync("agent:status:update")).GetProperty("payload").GetProperty("currentTask").GetString());
        Assert.False(carolJoins.IsCompleted);
        Assert.Equal(0, alice.Pending("agent:status:update"));

        // the join goes on: feed-a's viewers get a-2 once, in order, then what follows
        hold.Release();
        await carolJoins;
        await node.PublishAsync("feed-a", "agent:status:update", Status("a-3"));
        foreach (var viewer in new[] { alice, carol })
        {
            Assert.Equal("a-2", (await viewer.NextAsync("agent:status:update")).GetProperty("payload").GetProperty("currentTask").GetString());
            Assert.Equal("a-3", (await viewer.NextAsync("agent:status:update")).GetProperty("payload").GetProperty("currentTask").GetString());
            await viewer.BarrierAsync();
            Assert.Empty(viewer.Drain("agent:status:update"));
        }
    }

    /// <summary>Holds the next head read (<see cref="IEventLog.LatestSeqAsync"/>) of one project made by the rooms' switch to live, until released.</summary>
    public sealed class LogHold
    {
        private readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private string? _armed;

        public Task Entered => _entered.Task;

        public Task Gate => _gate.Task;

        public void Arm(string projectId) => Volatile.Write(ref _armed, projectId);

        public void Release() => _gate.TrySetResult();

        public bool TryTake(string projectId)
        {
            if (Interlocked.CompareExchange(ref _armed, null, projectId) == projectId)
            {
                _entered.TrySetResult();
                return true;
            }

            return false;
        }
    }

    /// <summary>Whether the log is called by the rooms' switch to live (its state machine is on the stack).</summary>
    private static bool FromSwitchToLive() =>
        new System.Diagnostics.StackTrace().GetFrames().Any(f => f.GetMethod()?.DeclaringType?.Name.Contains(nameof(Builder.Rooms.IProjectRooms.SwitchToLiveAsync), StringComparison.Ordinal) == true);

    private static async Task<long> HeldAsync(IEventLog log, LogHold hold, string projectId, CancellationToken token)
    {
        await hold.Gate.WaitAsync(token);
        return await log.LatestSeqAsync(projectId, token);
    }
}
