namespace SocketIO.Redis.Tests;

/// <summary>
/// A Node.js socket.io 4.8 server with @socket.io/redis-adapter 8.3 and our server with the Redis
/// adapter on one redis-server; Node socket.io-client 4.8 clients on each ("n*" on Node, "d*" on
/// ours). Every broadcast is followed by a fence from the same side, so "exactly once" is
/// checked after everything published before the fence was delivered.
/// </summary>
public sealed class BroadcastInteropTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private static readonly string[] All = ["n1", "n2", "d1", "d2"];
    private Cluster _cluster = null!;
    private readonly Dictionary<string, string> _ids = [];

    private NodePeer Node => _cluster.Node;

    public async Task InitializeAsync()
    {
        _cluster = await Cluster.StartAsync(redis);
        _ids["n1"] = await Node.ConnectAsync("n1", Node.Url);
        _ids["n2"] = await Node.ConnectAsync("n2", Node.Url);
        _ids["d1"] = await Node.ConnectAsync("d1", _cluster.Ours.Url);
        _ids["d2"] = await Node.ConnectAsync("d2", _cluster.Ours.Url);
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private void AssertCounts(string eventName, params (string Client, int Count)[] expected)
    {
        foreach (var (client, count) in expected)
        {
            Assert.True(Node.Received(client, eventName).Count == count, $"{client} got {Node.Received(client, eventName).Count} \"{eventName}\", expected {count}. Output:\n{Node.Output}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task OneRoom_ReachesMembersOnBothServersOnce(bool fromOurs)
    {
        await Node.JoinAsync("n1", "room1");
        await Node.JoinAsync("d1", "room1");

        if (fromOurs)
        {
            _cluster.Ours.Io.To("room1").Emit("hello", new { n = 1 });
        }
        else
        {
            await Node.RunAsync("emit", new { rooms = new[] { "room1" }, @event = "hello", args = new object[] { new { n = 1 } } });
        }

        await _cluster.FenceAsync(fromOurs, All);
        AssertCounts("hello", ("n1", 1), ("d1", 1), ("n2", 0), ("d2", 0));
        Assert.Equal(1, Node.Received("d1", "hello")[0].Args[0]!["n"]!.GetValue<int>());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SeveralRooms_ASocketInTwoGetsItOnce(bool fromOurs)
    {
        await Node.JoinAsync("n1", "a");
        await Node.JoinAsync("n2", "a");
        await Node.JoinAsync("n2", "b");
        await Node.JoinAsync("d1", "b");
        await Node.JoinAsync("d1", "a");

        if (fromOurs)
        {
            _cluster.Ours.Io.To("a", "b").Emit("hello");
        }
        else
        {
            await Node.RunAsync("emit", new { rooms = new[] { "a", "b" }, @event = "hello" });
        }

        await _cluster.FenceAsync(fromOurs, All);
        AssertCounts("hello", ("n1", 1), ("n2", 1), ("d1", 1), ("d2", 0));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Except_SkipsTheRoomOnBothServers(bool fromOurs)
    {
        await Node.JoinAsync("n1", "quiet");
        await Node.JoinAsync("d1", "quiet");

        if (fromOurs)
        {
            _cluster.Ours.Io.Except("quiet").Emit("hello");
        }
        else
        {
            await Node.RunAsync("emit", new { except = new[] { "quiet" }, @event = "hello" });
        }

        await _cluster.FenceAsync(fromOurs, All);
        AssertCounts("hello", ("n1", 0), ("d1", 0), ("n2", 1), ("d2", 1));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ToOneSocketId_OnTheOtherServer(bool fromOurs)
    {
        if (fromOurs)
        {
            _cluster.Ours.Io.To(_ids["n2"]).Emit("hello");
        }
        else
        {
            await Node.RunAsync("emit", new { rooms = new[] { _ids["d2"] }, @event = "hello" });
        }

        await _cluster.FenceAsync(fromOurs, All);
        AssertCounts("hello", ("n1", 0), ("d1", 0), ("n2", fromOurs ? 1 : 0), ("d2", fromOurs ? 0 : 1));
    }

    [Theory]
    [InlineData("d1")]
    [InlineData("n1")]
    public async Task SocketBroadcast_ReachesEveryoneButTheSender(string sender)
    {
        await Node.RunAsync("clientEmit", new { client = sender, @event = "broadcast", args = new object[] { "news", new { from = sender } } });
        await _cluster.FenceAsync(sender.StartsWith('d'), All);
        AssertCounts("news", All.Select(c => (c, c == sender ? 0 : 1)).ToArray());
        Assert.Equal(sender, Node.Received(sender == "d1" ? "n2" : "d2", "news")[0].Args[0]!["from"]!.GetValue<string>());
    }

    [Fact]
    public async Task Binary_FromOursReachesNodeClientsAsBuffers()
    {
        byte[] bytes = [0, 1, 2, 250, 255];
        _cluster.Ours.Io.Emit("bin", bytes, new Dictionary<string, object?> { ["nested"] = new byte[] { 9, 8 }, ["text"] = "t" });
        await _cluster.FenceAsync(true, All);
        AssertCounts("bin", All.Select(c => (c, 1)).ToArray());
        foreach (var client in new[] { "n1", "d1" })
        {
            var args = Node.Received(client, "bin")[0].Args;
            Assert.Equal(Convert.ToBase64String(bytes), args[0]!["$bin"]!.GetValue<string>());
            Assert.Equal(Convert.ToBase64String([9, 8]), args[1]!["nested"]!["$bin"]!.GetValue<string>());
            Assert.Equal("t", args[1]!["text"]!.GetValue<string>());
        }
    }

    [Fact]
    public async Task Binary_FromNodeReachesOurClientsAsBinary()
    {
        var b64 = Convert.ToBase64String([7, 0, 255, 128]);
        await Node.RunAsync("emit", new { @event = "bin", args = new object[] { new Dictionary<string, object> { ["$bin"] = b64 }, new { inner = new Dictionary<string, object> { ["$bin"] = b64 }, k = 2.5 } } });
        await _cluster.FenceAsync(false, All);
        AssertCounts("bin", All.Select(c => (c, 1)).ToArray());
        var args = Node.Received("d1", "bin")[0].Args;
        Assert.Equal(b64, args[0]!["$bin"]!.GetValue<string>());
        Assert.Equal(b64, args[1]!["inner"]!["$bin"]!.GetValue<string>());
        Assert.Equal(2.5, args[1]!["k"]!.GetValue<double>());
    }

    [Fact]
    public async Task Emitter_ReachesSocketsOnBothServers()
    {
        await Node.JoinAsync("n2", "emitted");
        await Node.JoinAsync("d2", "emitted");
        await Node.RunAsync("emitterEmit", new { rooms = new[] { "emitted" }, @event = "from-emitter", args = new object[] { "x" } });
        await Node.RunAsync("emitterEmit", new { @event = "from-emitter-all" });

        // the emitter publishes on its own connection: wait for the last one, then count
        await Wait.UntilAsync(() => All.All(c => Node.Received(c, "from-emitter-all").Count == 1), "the emitter's broadcast to all");
        await Node.RunAsync("emitterEmit", new { @event = "fence" });
        await Wait.UntilAsync(() => All.All(c => Node.Received(c, "fence").Count == 1), "the emitter's fence");
        AssertCounts("from-emitter", ("n2", 1), ("d2", 1), ("n1", 0), ("d1", 0));
        AssertCounts("from-emitter-all", All.Select(c => (c, 1)).ToArray());
        Assert.Equal("x", Node.Received("d2", "from-emitter")[0].Args[0]!.GetValue<string>());
    }

    [Fact]
    public async Task Local_StaysOnThisServer()
    {
        _cluster.Ours.Io.Sockets.Local.Emit("local-only");
        await _cluster.FenceAsync(true, All);
        AssertCounts("local-only", ("d1", 1), ("d2", 1), ("n1", 0), ("n2", 0));
    }
}
