using System.Text.Json;

namespace SocketIO.Redis.Tests;

/// <summary>
/// The adapter's requests between a Node.js node (@socket.io/redis-adapter 8.3) and ours, from each
/// side: fetchSockets, socketsJoin / socketsLeave / disconnectSockets, allRooms, serverSideEmit
/// with ack, broadcasts with acks (timeout().emit), the emitter's requests, and the server count.
/// </summary>
public sealed class RequestInteropTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private Cluster _cluster = null!;
    private readonly Dictionary<string, string> _ids = [];

    private NodePeer Node => _cluster.Node;

    private DotNetNode Ours => _cluster.Ours;

    public async Task InitializeAsync()
    {
        _cluster = await Cluster.StartAsync(redis);
        _ids["n1"] = await Node.ConnectAsync("n1", Node.Url);
        _ids["d1"] = await Node.ConnectAsync("d1", Ours.Url);
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private async Task<Dictionary<string, HashSet<string>>> NodeFetchAsync(params string[] rooms)
    {
        var sockets = (await Node.RunAsync("fetch", new { rooms }))!.AsArray();
        return sockets.ToDictionary(s => s!["id"]!.GetValue<string>(), s => s!["rooms"]!.AsArray().Select(r => r!.GetValue<string>()).ToHashSet());
    }

    [Fact]
    public async Task FetchSockets_FromOurs_SeesNodeSocketsWithRoomsAndData()
    {
        await Node.JoinAsync("n1", "fetched");
        var all = await Ours.Io.Sockets.FetchSocketsAsync();
        Assert.Equal(new[] { _ids["d1"], _ids["n1"] }.Order(StringComparer.Ordinal), all.Select(s => s.Id).Order(StringComparer.Ordinal));
        var remote = Assert.Single(all, s => s.Id == _ids["n1"]);
        Assert.Contains("fetched", remote.Rooms);
        Assert.Equal("node", ((JsonElement)remote.Data["server"]!).GetString());

        var inRoom = await Ours.Io.In("fetched").FetchSocketsAsync();
        Assert.Equal(_ids["n1"], Assert.Single(inRoom).Id);
    }

    [Fact]
    public async Task FetchSockets_FromNode_SeesOurSocketsWithRoomsAndData()
    {
        await Node.JoinAsync("d1", "fetched");
        var sockets = (await Node.RunAsync("fetch", new { rooms = Array.Empty<string>() }))!.AsArray();
        Assert.Equal(2, sockets.Count);
        var ours = Assert.Single(sockets, s => s!["id"]!.GetValue<string>() == _ids["d1"])!;
        Assert.Contains("fetched", ours["rooms"]!.AsArray().Select(r => r!.GetValue<string>()));
        Assert.Equal("dotnet", ours["data"]!["server"]!.GetValue<string>());
        Assert.NotNull(ours["auth"]);
    }

    [Fact]
    public async Task SocketsJoinLeave_FromOurs_MoveNodeSockets()
    {
        Ours.Io.Sockets.SocketsJoin("joined");
        await Wait.UntilAsync(async () => (await NodeFetchAsync()).Values.All(r => r.Contains("joined")), "both sockets in \"joined\" (seen from Node)");
        Assert.Contains("joined", Ours.Io.Sockets.Sockets[_ids["d1"]].Rooms);

        Ours.Io.In("joined").SocketsLeave("joined");
        await Wait.UntilAsync(async () => (await NodeFetchAsync()).Values.All(r => !r.Contains("joined")), "both sockets out of \"joined\"");
        Assert.DoesNotContain("joined", Ours.Io.Sockets.Sockets[_ids["d1"]].Rooms);
    }

    [Fact]
    public async Task SocketsJoinLeave_FromNode_MoveOurSockets()
    {
        await Node.RunAsync("socketsJoin", new { room = "joined" });
        await Wait.UntilAsync(() => Ours.Io.Sockets.Sockets.TryGetValue(_ids["d1"], out var s) && s.Rooms.Contains("joined"), "our socket in \"joined\"");
        await Node.RunAsync("socketsLeave", new { rooms = new[] { "joined" }, room = "joined" });
        await Wait.UntilAsync(() => !Ours.Io.Sockets.Sockets[_ids["d1"]].Rooms.Contains("joined"), "our socket out of \"joined\"");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task DisconnectSockets_FromEitherSide_DisconnectsBoth(bool fromOurs)
    {
        if (fromOurs)
        {
            Ours.Io.Sockets.DisconnectSockets();
        }
        else
        {
            await Node.RunAsync("disconnectSockets", new { close = false });
        }

        await Wait.UntilAsync(() => Node.Received("n1", "disconnect").Count == 1 && Node.Received("d1", "disconnect").Count == 1, "both clients disconnected");
        Assert.Equal("io server disconnect", Node.Received("d1", "disconnect")[0].Args[0]!.GetValue<string>());
    }

    [Fact]
    public async Task AllRooms_FromEachSide()
    {
        await Node.JoinAsync("n1", "node-room");
        await Node.JoinAsync("d1", "dotnet-room");
        var fromOurs = await Ours.Adapter.AllRoomsAsync();
        Assert.Contains("node-room", fromOurs);
        Assert.Contains("dotnet-room", fromOurs);
        Assert.Contains(_ids["n1"], fromOurs);

        var fromNode = (await Node.RunAsync("allRooms"))!.AsArray().Select(r => r!.GetValue<string>()).ToHashSet();
        Assert.Contains("node-room", fromNode);
        Assert.Contains("dotnet-room", fromNode);
        Assert.Contains(_ids["d1"], fromNode);
    }

    [Fact]
    public async Task ServerSideEmitWithAck_FromOurs_NodeAnswers()
    {
        var result = await Ours.Adapter.ServerSideEmitAsync(["server-ping", 42], withAck: true);
        Assert.False(result.TimedOut);
        var answer = Assert.Single(result.Responses);
        Assert.Equal("node", answer.GetProperty("from").GetString());
        Assert.Equal(42, answer.GetProperty("got").GetInt32());
        await Wait.UntilAsync(() => Node.ServerEvents.Count == 1, "Node's server-ping handler");
    }

    [Fact]
    public async Task ServerSideEmitWithAck_FromNode_OursAnswers()
    {
        Ours.Adapter.ServerSideEmitReceived += (data, ack) =>
        {
            if (data is [string name, var arg, ..] && name == "server-ping")
            {
                ack?.Invoke(new Dictionary<string, object?> { ["from"] = "dotnet", ["got"] = arg });
            }
        };
        var result = (await Node.RunAsync("serverSideEmitWithAck", new { @event = "server-ping", args = new object[] { 7 }, timeout = 3000 }))!;
        Assert.Null(result["error"]);
        var answer = Assert.Single(result["responses"]!.AsArray())!;
        Assert.Equal("dotnet", answer["from"]!.GetValue<string>());
        Assert.Equal(7, answer["got"]!.GetValue<int>());
    }

    [Fact]
    public async Task BroadcastWithAck_FromOurs_GetsAcksFromClientsOnBothServers()
    {
        var responses = await Ours.Io.Sockets.Timeout(TimeSpan.FromSeconds(3)).EmitWithAckAsync("ask", ["q"]);
        Assert.Equal(new[] { "d1", "n1" }, responses.Select(r => r[0].GetProperty("from").GetString()!).Order(StringComparer.Ordinal).ToArray());
        Assert.All(responses, r => Assert.Equal("q", r[0].GetProperty("echo").GetString()));
    }

    [Fact]
    public async Task BroadcastWithAck_FromNode_GetsAcksFromClientsOnBothServers()
    {
        var result = (await Node.RunAsync("emitWithAck", new { @event = "ask", args = new object[] { "q" }, timeout = 3000 }))!;
        Assert.True(result["error"] is null, result.ToJsonString());
        var from = result["responses"]!.AsArray().Select(r => r!["from"]!.GetValue<string>()).Order().ToArray();
        Assert.Equal(["d1", "n1"], from);
    }

    [Fact]
    public async Task BroadcastWithAck_FromNode_OurAcksGoBackOneByOneAsTheyArrive()
    {
        // "held" (on our server) keeps its ack back: d1's ack must reach Redis before it answers,
        // as the Node.js adapter forwards each ack the moment its client answers
        await Node.RunAsync("connect", new { client = "held", url = Ours.Url, hold = true });
        var acksOnRedis = 0;
        await using var watcher = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        await watcher.GetSubscriber().SubscribeAsync(StackExchange.Redis.RedisChannel.Literal($"{_cluster.Key}-response#/#"), (_, value) =>
        {
            if (MsgPack.Decode((byte[])value!) is Dictionary<string, object?> response && response.GetValueOrDefault("type") is 9L)
            {
                Interlocked.Increment(ref acksOnRedis);
            }
        });

        await Node.RunAsync("emitWithAckStart", new { name = "streamed", @event = "ask", args = new object[] { "q" }, timeout = 10_000 });
        await Wait.UntilAsync(() => Volatile.Read(ref acksOnRedis) == 1 && Node.Received("held", "ask").Count == 1, "d1's ack on Redis while held's is still held back");
        Assert.Equal(1, (await Node.RunAsync("release", new { client = "held" }))!.GetValue<int>());
        var result = (await Node.RunAsync("emitWithAckResult", new { name = "streamed" }))!;
        Assert.True(result["error"] is null, result.ToJsonString());
        Assert.Equal(["d1", "held", "n1"], result["responses"]!.AsArray().Select(r => r!["from"]!.GetValue<string>()).Order().ToArray());

        // held's ack reached the Node node on its subscription; the watcher's own subscription
        // (another Redis connection) may hear of it a moment later (failed once in CI when read at once)
        await Wait.UntilAsync(() => Volatile.Read(ref acksOnRedis) >= 2, "held's ack on Redis as a second message");
        Assert.Equal(2, Volatile.Read(ref acksOnRedis));
    }

    [Fact]
    public async Task BroadcastWithAck_ToARoomWithBinary_FromNode()
    {
        await Node.JoinAsync("d1", "askers");
        var b64 = Convert.ToBase64String([1, 2, 3]);
        var result = (await Node.RunAsync("emitWithAck", new { rooms = new[] { "askers" }, @event = "ask", args = new object[] { new Dictionary<string, object> { ["$bin"] = b64 } }, timeout = 3000 }))!;
        Assert.True(result["error"] is null, result.ToJsonString());
        var response = Assert.Single(result["responses"]!.AsArray())!;
        Assert.Equal("d1", response["from"]!.GetValue<string>());
        Assert.Equal(b64, response["echo"]!["$bin"]!.GetValue<string>());
    }

    [Fact]
    public async Task Emitter_SocketsJoinAndDisconnect_ReachOurSockets()
    {
        await Node.RunAsync("emitterSocketsJoin", new { room = "by-emitter" });
        await Wait.UntilAsync(() => Ours.Io.Sockets.Sockets[_ids["d1"]].Rooms.Contains("by-emitter"), "our socket joined by the emitter");
        await Node.RunAsync("emitterDisconnectSockets", new { rooms = new[] { "by-emitter" }, close = true });
        await Wait.UntilAsync(() => Node.Received("d1", "disconnect").Count == 1 && Node.Received("n1", "disconnect").Count == 1, "both disconnected by the emitter");
    }

    [Fact]
    public async Task ServerCount_DropsWhenOurServerStops()
    {
        Assert.Equal(2, (await Node.RunAsync("serverCount"))!.GetValue<int>());
        Assert.Equal(2, await Ours.Adapter.ServerCountAsync());
        await Ours.DisposeAsync();
        await Wait.UntilAsync(async () => (await Node.RunAsync("serverCount"))!.GetValue<int>() == 1, "the Node node to count one server");
        var rooms = (await Node.RunAsync("allRooms"))!.AsArray();
        Assert.DoesNotContain(rooms, r => r!.GetValue<string>() == _ids["d1"]);
    }

    [Fact]
    public async Task FetchSockets_TimesOutWhenANodeDoesNotAnswer()
    {
        // a third subscriber on the request channel that never answers: NUMSUB counts it
        await using var silent = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        await silent.GetSubscriber().SubscribeAsync(StackExchange.Redis.RedisChannel.Literal($"{_cluster.Key}-request#/#"));
        await Wait.UntilAsync(async () => await Ours.Adapter.ServerCountAsync() == 3, "three subscribers");
        var started = DateTime.UtcNow;
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => Ours.Io.Sockets.FetchSocketsAsync());
        Assert.Contains("only 1 responses received out of 2", ex.Message, StringComparison.Ordinal);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ServerSideEmitWithAck_TimesOutWithPartialResults()
    {
        await using var silent = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration);
        await silent.GetSubscriber().SubscribeAsync(StackExchange.Redis.RedisChannel.Literal($"{_cluster.Key}-request#/#"));
        await Wait.UntilAsync(async () => await Ours.Adapter.ServerCountAsync() == 3, "three subscribers");
        var result = await Ours.Adapter.ServerSideEmitAsync(["server-ping", 1], withAck: true);
        Assert.True(result.TimedOut);
        Assert.Equal(2, result.Expected);
        Assert.Equal("node", Assert.Single(result.Responses).GetProperty("from").GetString());
    }

    [Fact]
    public async Task BroadcastWithAck_TimesOutWithPartialResults_WhenANodeClientDoesNotAck()
    {
        await Node.RunAsync("connect", new { client = "mute", url = Node.Url, silent = true });
        var result = await Ours.Adapter.BroadcastWithAckAsync(new SocketIO.Adapters.BroadcastMessage("ask", ["q"]), new SocketIO.Adapters.BroadcastOptions { Timeout = TimeSpan.FromSeconds(1) }, CancellationToken.None);
        Assert.True(result.TimedOut);
        Assert.Equal(3, result.Expected);
        Assert.Equal(new[] { "d1", "n1" }, result.Responses.Select(r => r[0].GetProperty("from").GetString()!).Order(StringComparer.Ordinal).ToArray());
        await Assert.ThrowsAsync<TimeoutException>(() => Ours.Io.Sockets.Timeout(TimeSpan.FromSeconds(1)).EmitWithAckAsync("ask", ["q"]));
    }

    [Fact]
    public async Task Emitter_ServerSideEmit_ReachesBothServers()
    {
        var received = new List<IReadOnlyList<object?>>();
        var withAck = 0;
        Ours.Adapter.ServerSideEmitReceived += (data, ack) =>
        {
            lock (received)
            {
                received.Add(data);
                withAck += ack is null ? 0 : 1;
            }
        };
        await Node.RunAsync("emitterServerSideEmit", new { @event = "server-ping", args = new object[] { "hi" } });
        await Wait.UntilAsync(() => Node.ServerEvents.Count == 1, "Node's handler");
        await Wait.UntilAsync(() => { lock (received) { return received.Count == 1; } }, "ours");
        Assert.Equal(["server-ping", "hi"], received[0]);
        Assert.Equal(0, withAck);
    }

    [Fact]
    public async Task FetchedRemoteSocket_EmitJoinDisconnect_ReachTheNodeSocket()
    {
        var remote = Assert.Single(await Ours.Io.Sockets.FetchSocketsAsync(), s => s.Id == _ids["n1"]);
        remote.Emit("direct", 1);
        remote.Join("via-remote");
        await Wait.UntilAsync(() => Node.Received("n1", "direct").Count == 1, "the direct emit");
        await Wait.UntilAsync(async () => (await NodeFetchAsync("via-remote")).ContainsKey(_ids["n1"]), "the remote join");
        remote.Disconnect();
        await Wait.UntilAsync(() => Node.Received("n1", "disconnect").Count == 1, "the remote disconnect");
        Assert.Empty(Node.Received("d1", "direct"));
        Assert.Empty(Node.Received("d1", "disconnect"));
    }
}
