using StackExchange.Redis;

namespace SocketIO.Redis.Tests;

/// <summary>Bad messages on the cluster's channels and bad options.</summary>
public sealed class RobustnessTests(RedisServer redis) : IClassFixture<RedisServer>
{
    [Fact]
    public async Task MalformedMessages_AreSkipped_AndTheSubscriptionsKeepWorking()
    {
        // the Node peer only hosts the client here: its adapter is on another key, since Node's
        // adapter decodes broadcasts without a guard (with this garbage on its key the peer's
        // client saw nothing more)
        var key = "g" + Guid.NewGuid().ToString("N")[..10];
        await using var node = await NodePeer.StartAsync(redis.Port, "elsewhere-" + key);
        await using var ours = await DotNetNode.StartAsync(redis.Configuration, key);
        await node.ConnectAsync("d1", ours.Url);
        await using var raw = await ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        var pub = raw.GetSubscriber();
        byte[][] garbage =
        [
            [0xc1],
            [0x93, 0xa1, (byte)'x'],
            MsgPack.Encode(new List<object?> { "x", "not a packet", null }),
            MsgPack.Encode(new List<object?> { "x", new Dictionary<string, object?> { ["type"] = 2L, ["data"] = new List<object?> { 5L } }, null }),
            MsgPack.Encode(new List<object?> { "x", new Dictionary<string, object?> { ["type"] = 2L, ["data"] = new List<object?> { "wrong-nsp" }, ["nsp"] = "/other" }, null }),
        ];
        foreach (var bytes in garbage)
        {
            await pub.PublishAsync(RedisChannel.Literal($"{key}#/#"), bytes);
        }

        foreach (var text in new[] { "{", "{\"type\":\"x\"}", "{\"type\":5,\"requestId\":\"r\",\"opts\":7}", "{\"type\":2,\"opts\":{\"rooms\":5},\"rooms\":{}}" })
        {
            await pub.PublishAsync(RedisChannel.Literal($"{key}-request#/#"), text);
        }

        await pub.PublishAsync(RedisChannel.Literal($"{key}-response#/#"), new byte[] { 0xc1, 0x00 });

        // published after the garbage on the same connection: delivered after it
        await pub.PublishAsync(RedisChannel.Literal($"{key}#/#"), MsgPack.Encode(new List<object?>
        {
            "x",
            new Dictionary<string, object?> { ["type"] = 2L, ["data"] = new List<object?> { "after-garbage", 1L }, ["nsp"] = "/" },
            new Dictionary<string, object?> { ["rooms"] = new List<object?>(), ["except"] = new List<object?>(), ["flags"] = new Dictionary<string, object?>() },
        }));
        await Wait.UntilAsync(() => node.Received("d1", "after-garbage").Count == 1, "the valid broadcast after the garbage");
        Assert.Empty(node.Received("d1", "wrong-nsp"));
        Assert.Equal(1, await ours.Adapter.ServerCountAsync());
        Assert.Single(await ours.Io.Sockets.FetchSocketsAsync());
    }

    [Theory]
    [InlineData("", 5)]
    [InlineData("a#b", 5)]
    [InlineData("socket.io", 0)]
    [InlineData("socket.io", 3600)]
    public void InvalidOptions_AreRefusedAtStartUp(string key, int timeoutSeconds)
    {
        var options = new RedisAdapterOptions { Key = key, RequestsTimeout = TimeSpan.FromSeconds(timeoutSeconds) };
        var ex = Assert.Throws<InvalidOperationException>(options.Validate);
        Assert.Contains(key.Length == 0 || key.Contains('#', StringComparison.Ordinal) ? "Key" : "RequestsTimeout", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddRedisAdapter_WithoutAConnection_SaysWhatIsMissing()
    {
        var services = new Microsoft.Extensions.DependencyInjection.ServiceCollection();
        services.AddSocketIO().AddRedisAdapter(o => o.Key = "k");
        using var provider = Microsoft.Extensions.DependencyInjection.ServiceCollectionContainerBuilderExtensions.BuildServiceProvider(services);
        var ex = Assert.Throws<InvalidOperationException>(() => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetService<SocketIOServer>(provider));
        Assert.Contains("Configuration", ex.Message, StringComparison.Ordinal);
    }
}
