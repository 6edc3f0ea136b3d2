namespace SocketIO.Redis.Tests;

/// <summary>
/// redis-server stops and comes back on the same port under a running cluster: our node keeps
/// delivering to its own sockets, logs the outage, resubscribes, and cross-node delivery resumes.
/// </summary>
public sealed class ConnectionLossTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private readonly CapturingLogs _logs = new();
    private Cluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await Cluster.StartAsync(redis, _logs);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task RedisDown_LocalDeliveryGoesOn_ThenResubscribesWhenItReturns()
    {
        var node = _cluster.Node;
        var ours = _cluster.Ours;
        await node.ConnectAsync("n1", node.Url);
        await node.ConnectAsync("d1", ours.Url);

        await redis.StopAsync();
        await Wait.UntilAsync(() => !ours.Adapter.IsConnected, "our node to notice the outage");
        ours.Io.Emit("during-outage", 1);
        ours.Io.To("nobody-here").Emit("during-outage", 2);
        await Wait.UntilAsync(() => node.Received("d1", "during-outage").Count == 1, "local delivery during the outage");
        Assert.Empty(node.Received("n1", "during-outage"));
        await Wait.UntilAsync(() => ours.Adapter.PublishFailures >= 2, "the dropped publishes counted");
        await Wait.UntilAsync(() => _logs.Lines.Any(l => l.Contains("Redis connection lost", StringComparison.Ordinal)), "the outage in the log");

        await redis.StartAsync();
        await Wait.UntilAsync(async () => ours.Adapter.IsConnected && await ours.Adapter.ServerCountAsync() == 2, "both nodes subscribed again", TimeSpan.FromSeconds(40));
        await Wait.UntilAsync(() => _logs.Lines.Any(l => l.Contains("Redis connection restored", StringComparison.Ordinal)), "the return in the log");

        await node.RunAsync("emit", new { @event = "after" });
        ours.Io.Emit("after-from-ours");
        await Wait.UntilAsync(() => node.Received("d1", "after").Count == 1 && node.Received("n1", "after-from-ours").Count == 1, "cross-node delivery after the outage");
        await _cluster.FenceAsync(true, "n1", "d1");
        Assert.Single(node.Received("d1", "during-outage"));
        Assert.Empty(node.Received("n1", "during-outage"));
    }
}
