using System.Text.Json;

namespace SocketIO.Tests.Server;

/// <summary>Connection state recovery: pid and offsets, replay of missed events, fresh sessions when recovery is impossible.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class RecoveryTests
{
    private static void EnableRecovery(SocketIOOptions o, TimeSpan? max = null, bool skipMiddlewares = true) =>
        o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions
        {
            MaxDisconnectionDuration = max ?? TimeSpan.FromMinutes(2),
            SkipMiddlewares = skipMiddlewares,
        };

    /// <summary>Reads an EVENT whose last argument is an offset; checks the rest and returns the offset.</summary>
    private static async Task<string> ExpectEventWithOffsetAsync(SioClient client, string expectedArgsWithoutOffset)
    {
        var raw = await client.NextAsync();
        var packet = TextPacket.Parse(raw);
        Assert.True(packet.Type == 2 && packet.Id is null, $"expected an EVENT without ack id, got {raw}");
        var args = packet.Payload.EnumerateArray().ToList();
        Assert.True(args.Count >= 2, $"expected an offset argument in {raw}");
        Assert.Equal(JsonValueKind.String, args[^1].ValueKind);
        Assert.Equal(expectedArgsWithoutOffset, "[" + string.Join(",", args[..^1].Select(a => a.GetRawText())) + "]");
        return args[^1].GetString()!;
    }

    /// <summary>Closes the client and waits until the server has processed its disconnection.</summary>
    private static async Task DropAsync(SioClient client, SocketIOSocket socket)
    {
        var gone = new Signal<string>();
        socket.OnDisconnect(gone.Set);
        await client.DisposeAsync();
        Assert.Equal("transport close", await gone.WaitAsync());
    }

    [Fact]
    public async Task ConnectReply_HasPid_AndEventsCarryAnOffset()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        Assert.NotNull(client.Pid);
        Assert.NotEqual(socket.Id, client.Pid);
        Assert.False(socket.Recovered);

        socket.Emit("direct", 1);
        server.Io.Emit("broadcast", 2);
        var first = await ExpectEventWithOffsetAsync(client, "[\"direct\",1]");
        var second = await ExpectEventWithOffsetAsync(client, "[\"broadcast\",2]");
        Assert.NotEqual(first, second);

        // volatile events are not stored, so they carry no offset
        socket.Volatile.Emit("volatile", 3);
        await client.ExpectAsync("42[\"volatile\",3]");
    }

    [Fact]
    public async Task StoredBroadcast_KeepsItsEncodedPacket_NotItsArguments()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var (client, _) = await server.ConnectAsync();
        await using var _cl = client;

        var argument = EmitAndForget(server);
        await ExpectEventWithOffsetAsync(client, "[\"e\",{\"text\":\"kept as sent\"}]");
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        // the store holds the frame that was sent; the argument object is garbage
        Assert.False(argument.IsAlive, "the recovery store still holds the broadcast's argument");
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference EmitAndForget(SioTestServer server)
    {
        var argument = new StoredArgument("kept as sent");
        server.Io.Emit("e", argument);
        return new WeakReference(argument);
    }

    private sealed record StoredArgument(string Text);

    [Fact]
    public async Task WithoutRecovery_ConnectReplyHasNoPid_AndEventsNoOffset()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        Assert.Null(client.Pid);
        socket.Emit("e", 1);
        await client.ExpectAsync("42[\"e\",1]");
    }

    [Fact]
    public async Task Reconnect_WithPidAndOffset_RestoresIdRoomsDataAndReplaysMissedEventsInOrder()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var middlewareRuns = 0;
        server.Io.Sockets.Use((_, _) =>
        {
            Interlocked.Increment(ref middlewareRuns);
            return ValueTask.CompletedTask;
        });
        server.Io.Sockets.OnConnection(s => s.Emit("welcome", s.Recovered));
        var (first, s1) = await server.ConnectAsync();
        var pid = first.Pid!;
        await ExpectEventWithOffsetAsync(first, "[\"welcome\",false]");
        s1.Join("room");
        s1.Data["user"] = "alice";
        server.Io.To("room").Emit("e", 0);
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\",0]");

        await DropAsync(first, s1);
        server.Io.To("room").Emit("e", 1);
        server.Io.Emit("e", 2);
        server.Io.To("elsewhere").Emit("not-for-you");
        server.Io.To("room").Volatile.Emit("volatile-not-stored");
        server.Io.To("room").Emit("e", 3, new { nested = "x" });

        await using var second = await SioClient.OpenAsync(server);
        var sid = await second.ConnectAsync(auth: $"{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}");

        Assert.Equal(s1.Id, sid);
        Assert.Equal(pid, second.Pid);
        await ExpectEventWithOffsetAsync(second, "[\"e\",1]");
        await ExpectEventWithOffsetAsync(second, "[\"e\",2]");
        await ExpectEventWithOffsetAsync(second, "[\"e\",3,{\"nested\":\"x\"}]");
        await ExpectEventWithOffsetAsync(second, "[\"welcome\",true]");

        var s2 = await server.SocketAsync(second, sid);
        Assert.NotSame(s1, s2);
        Assert.True(s2.Recovered);
        Assert.Equal(new HashSet<string> { sid, "room" }, s2.Rooms);
        Assert.Equal("alice", s2.Data["user"]);
        Assert.Equal(1, Volatile.Read(ref middlewareRuns));

        // the restored room membership is live
        server.Io.To("room").Emit("e", 4);
        await ExpectEventWithOffsetAsync(second, "[\"e\",4]");
    }

    [Fact]
    public async Task Reconnect_ReplaysEventsAddressedToTheSocketId_NotThoseExceptingIt()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var (first, s1) = await server.ConnectAsync();
        s1.Emit("e", 0);
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\",0]");

        await DropAsync(first, s1);
        server.Io.To(s1.Id).Emit("to-id");
        server.Io.Except(s1.Id).Emit("except-id");
        server.Io.Emit("all");

        await using var second = await SioClient.OpenAsync(server);
        var sid = await second.ConnectAsync(auth: $"{{\"pid\":\"{first.Pid}\",\"offset\":\"{offset}\"}}");

        Assert.Equal(s1.Id, sid);
        await ExpectEventWithOffsetAsync(second, "[\"to-id\"]");
        await ExpectEventWithOffsetAsync(second, "[\"all\"]");
        var s2 = await server.SocketAsync(second, sid);
        s2.Volatile.Emit("marker");
        await second.ExpectAsync("42[\"marker\"]");
    }

    [Fact]
    public async Task Reconnect_WithSkipMiddlewaresOff_RunsTheMiddlewareAgain()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o, skipMiddlewares: false));
        var middlewareRuns = 0;
        server.Io.Sockets.Use((_, _) =>
        {
            Interlocked.Increment(ref middlewareRuns);
            return ValueTask.CompletedTask;
        });
        var (first, s1) = await server.ConnectAsync();
        s1.Emit("e");
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\"]");
        await DropAsync(first, s1);

        await using var second = await SioClient.OpenAsync(server);
        var sid = await second.ConnectAsync(auth: $"{{\"pid\":\"{first.Pid}\",\"offset\":\"{offset}\"}}");

        Assert.Equal(s1.Id, sid);
        Assert.True((await server.SocketAsync(second, sid)).Recovered);
        Assert.Equal(2, Volatile.Read(ref middlewareRuns));
    }

    [Fact]
    public async Task Reconnect_AfterServerNamespaceDisconnect_IsNotRecovered()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var (first, s1) = await server.ConnectAsync();
        await using var _cl = first;
        s1.Emit("e");
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\"]");
        s1.Disconnect();
        await first.ExpectAsync("41");

        var sid = await first.ConnectAsync(auth: $"{{\"pid\":\"{first.Pid}\",\"offset\":\"{offset}\"}}");

        Assert.NotEqual(s1.Id, sid);
        Assert.False((await server.SocketAsync(first, sid)).Recovered);
    }

    [Theory]
    [InlineData("unknown-offset")]
    [InlineData("unknown-pid")]
    public async Task Reconnect_WithUnknownOffsetOrPid_GetsAFreshSession(string variant)
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var (first, s1) = await server.ConnectAsync();
        var pid = first.Pid!;
        s1.Join("room");
        s1.Emit("e");
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\"]");
        await DropAsync(first, s1);
        server.Io.To("room").Emit("missed");

        var auth = variant == "unknown-offset"
            ? $"{{\"pid\":\"{pid}\",\"offset\":\"{offset[..offset.LastIndexOf('-')]}-fffffff\"}}"
            : $"{{\"pid\":\"AAAAAAAAAAAAAAAAAAAA\",\"offset\":\"{offset}\"}}";
        await using var second = await SioClient.OpenAsync(server);
        var sid = await second.ConnectAsync(auth: auth);

        Assert.NotEqual(s1.Id, sid);
        Assert.NotNull(second.Pid);
        Assert.NotEqual(pid, second.Pid);
        var s2 = await server.SocketAsync(second, sid);
        Assert.False(s2.Recovered);
        Assert.Equal(new HashSet<string> { sid }, s2.Rooms);

        // nothing is replayed: the next packet is one emitted now
        s2.Emit("marker");
        await ExpectEventWithOffsetAsync(second, "[\"marker\"]");
    }

    [Fact]
    public async Task Reconnect_AfterMaxDisconnectionDuration_GetsAFreshSession()
    {
        // the adapter judges expiry by the options' TimeProvider wall clock; a shifted clock stands in
        // for the fake one (Microsoft.Extensions.TimeProvider.Testing is not referenced)
        var clock = new ShiftedTimeProvider();
        await using var server = await SioTestServer.StartAsync(o =>
        {
            o.Engine.TimeProvider = clock;
            EnableRecovery(o, TimeSpan.FromSeconds(30));
        });
        var (first, s1) = await server.ConnectAsync();
        var pid = first.Pid!;
        s1.Join("room");
        s1.Emit("e");
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\"]");
        await DropAsync(first, s1);
        server.Io.To("room").Emit("missed");

        clock.Advance(TimeSpan.FromSeconds(31));
        await using var second = await SioClient.OpenAsync(server);
        var sid = await second.ConnectAsync(auth: $"{{\"pid\":\"{pid}\",\"offset\":\"{offset}\"}}");

        Assert.NotEqual(s1.Id, sid);
        Assert.NotEqual(pid, second.Pid);
        Assert.False((await server.SocketAsync(second, sid)).Recovered);
    }

    [Fact]
    public async Task Reconnect_JustBeforeMaxDisconnectionDuration_IsRecovered()
    {
        var clock = new ShiftedTimeProvider();
        await using var server = await SioTestServer.StartAsync(o =>
        {
            o.Engine.TimeProvider = clock;
            EnableRecovery(o, TimeSpan.FromSeconds(30));
        });
        var (first, s1) = await server.ConnectAsync();
        s1.Emit("e");
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\"]");
        await DropAsync(first, s1);

        clock.Advance(TimeSpan.FromSeconds(25));
        await using var second = await SioClient.OpenAsync(server);
        var sid = await second.ConnectAsync(auth: $"{{\"pid\":\"{first.Pid}\",\"offset\":\"{offset}\"}}");

        Assert.Equal(s1.Id, sid);
    }

    [Fact]
    public async Task Session_CanBeRecoveredOnlyOnce()
    {
        await using var server = await SioTestServer.StartAsync(o => EnableRecovery(o));
        var (first, s1) = await server.ConnectAsync();
        s1.Emit("e");
        var offset = await ExpectEventWithOffsetAsync(first, "[\"e\"]");
        await DropAsync(first, s1);
        var auth = $"{{\"pid\":\"{first.Pid}\",\"offset\":\"{offset}\"}}";

        await using var second = await SioClient.OpenAsync(server);
        Assert.Equal(s1.Id, await second.ConnectAsync(auth: auth));
        await using var third = await SioClient.OpenAsync(server);
        Assert.NotEqual(s1.Id, await third.ConnectAsync(auth: auth));
    }
}
