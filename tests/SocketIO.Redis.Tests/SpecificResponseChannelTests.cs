namespace SocketIO.Redis.Tests;

/// <summary>
/// Both nodes with <c>publishOnSpecificResponseChannel</c> on: answers go to
/// <c>&lt;key&gt;-response#/#&lt;requester uid&gt;#</c>, and each side still gets the other's.
/// </summary>
public sealed class SpecificResponseChannelTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private Cluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await Cluster.StartAsync(redis, specificResponseChannel: true);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task Requests_AreAnsweredOnTheRequestersChannel_BothWays()
    {
        var node = _cluster.Node;
        var ours = _cluster.Ours;
        var n1 = await node.ConnectAsync("n1", node.Url);
        var d1 = await node.ConnectAsync("d1", ours.Url);

        // watch the common response channel: nothing may be published there
        await using var watcher = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var common = 0;
        var specific = 0;
        await watcher.GetSubscriber().SubscribeAsync(StackExchange.Redis.RedisChannel.Pattern($"{_cluster.Key}-response#/#*"), (channel, _) =>
        {
            if (channel.ToString() == $"{_cluster.Key}-response#/#")
            {
                Interlocked.Increment(ref common);
            }
            else
            {
                Interlocked.Increment(ref specific);
            }
        });

        var fetched = await ours.Io.Sockets.FetchSocketsAsync();
        Assert.Contains(fetched, s => s.Id == n1);
        var fromNode = (await node.RunAsync("fetch", new { rooms = Array.Empty<string>() }))!.AsArray();
        Assert.Contains(fromNode, s => s!["id"]!.GetValue<string>() == d1);
        var acks = (await node.RunAsync("emitWithAck", new { @event = "ask", args = new object[] { "q" }, timeout = 3000 }))!;
        Assert.True(acks["error"] is null, acks.ToJsonString());
        Assert.Equal(2, acks["responses"]!.AsArray().Count);

        await Wait.UntilAsync(() => Volatile.Read(ref specific) >= 4, "answers on the specific channels");
        Assert.Equal(0, Volatile.Read(ref common));
    }
}
