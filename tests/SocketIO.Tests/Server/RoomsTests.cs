using SocketIO.Parser;

namespace SocketIO.Tests.Server;

/// <summary>
/// Rooms and broadcast selection. A packet that must NOT reach a client is checked by emitting a
/// "marker" to that client afterwards: each connection's packets are ordered, so the marker must be
/// the next packet.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class RoomsTests
{
    private const string Marker = "42[\"marker\"]";

    private static async Task ExpectMarkerAsync(SioClient client, SocketIOSocket socket)
    {
        socket.Emit("marker");
        await client.ExpectAsync(Marker);
    }

    [Fact]
    public async Task Rooms_ContainsOwnIdFromTheStart()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        Assert.Equal(new HashSet<string> { socket.Id }, socket.Rooms);
        socket.Join("r");
        Assert.Equal(new HashSet<string> { socket.Id, "r" }, socket.Rooms);
    }

    [Fact]
    public async Task JoinAndLeave_ControlWhoReceivesARoomBroadcast()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;

        sa.Join("r");
        server.Io.To("r").Emit("ev", 1);
        await a.ExpectAsync("42[\"ev\",1]");
        await ExpectMarkerAsync(b, sb);

        sa.Leave("r");
        Assert.DoesNotContain("r", sa.Rooms);
        server.Io.To("r").Emit("ev", 2);
        await ExpectMarkerAsync(a, sa);
        await ExpectMarkerAsync(b, sb);
    }

    [Fact]
    public async Task A_broadcast_is_encoded_once_for_its_recipients_and_not_at_all_for_an_empty_room()
    {
        var parser = new CountingParser(new JsonPacketParser());
        await using var server = await SioTestServer.StartAsync(o => o.Parser = parser);
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");
        sb.Join("r");

        var before = parser.Events;
        server.Io.To("nobody-here").Emit("ev", 1);
        Assert.Equal(before, parser.Events);

        server.Io.To("r").Emit("ev", 2);
        await a.ExpectAsync("42[\"ev\",2]");
        await b.ExpectAsync("42[\"ev\",2]");
        Assert.Equal(before + 1, parser.Events);
    }

    private sealed class CountingParser(ISocketIOParser inner) : ISocketIOParser
    {
        private int _events;

        public int Events => Volatile.Read(ref _events);

        public EncodedPacket Encode(SocketPacketType type, string nsp, long? id, object? data, bool isVolatile = false)
        {
            if (type == SocketPacketType.Event)
            {
                Interlocked.Increment(ref _events);
            }

            return inner.Encode(type, nsp, id, data, isVolatile);
        }

        public IPacketDecoder CreateDecoder() => inner.CreateDecoder();
    }

    [Fact]
    public async Task ToChained_SocketInBothRoomsGetsTheEventOnce()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;
        sa.Join("x", "y");
        sb.Join("y");

        server.Io.To("x").To("y").Emit("both", 1);

        await a.ExpectAsync("42[\"both\",1]");
        await ExpectMarkerAsync(a, sa);
        await b.ExpectAsync("42[\"both\",1]");
        await ExpectMarkerAsync(b, sb);
        await ExpectMarkerAsync(c, sc);
    }

    [Fact]
    public async Task ToSeveralRooms_SocketInBothRoomsGetsTheEventOnce()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;
        sa.Join("x", "y");
        sb.Join("x");

        server.Io.Of("/").To("x", "y").Emit("both", 2);

        await a.ExpectAsync("42[\"both\",2]");
        await ExpectMarkerAsync(a, sa);
        await b.ExpectAsync("42[\"both\",2]");
        await ExpectMarkerAsync(b, sb);
        await ExpectMarkerAsync(c, sc);
    }

    [Fact]
    public async Task Except_SkipsTheSocketsOfTheRoom()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;
        sa.Join("x");
        sb.Join("y");
        sc.Join("x", "y");

        server.Io.Except("x").Emit("all-but-x");
        await b.ExpectAsync("42[\"all-but-x\"]");
        await ExpectMarkerAsync(a, sa);
        await ExpectMarkerAsync(c, sc);

        // To + Except: in y but not in x
        server.Io.To("y").Except("x").Emit("y-not-x");
        await b.ExpectAsync("42[\"y-not-x\"]");
        await ExpectMarkerAsync(a, sa);
        await ExpectMarkerAsync(c, sc);
    }

    [Fact]
    public async Task ToSeveralRoomsExcept_SkipsTheSocketsInAnExceptedRoom()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;
        sa.Join("x");
        sb.Join("y");
        sc.Join("x", "z");

        server.Io.To("x", "y").Except("z").Emit("not-z");
        await a.ExpectAsync("42[\"not-z\"]");
        await b.ExpectAsync("42[\"not-z\"]");
        await ExpectMarkerAsync(c, sc);

        sb.To("x", "y").Emit("from-b");
        await a.ExpectAsync("42[\"from-b\"]");
        await c.ExpectAsync("42[\"from-b\"]");
        await ExpectMarkerAsync(b, sb);
    }

    [Fact]
    public async Task Leave_OwnId_KeepsTheOtherRooms_AndTheSocketCanJoinItAgain()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        await using var _a = a;
        sa.Join("r");

        sa.Leave(sa.Id);
        Assert.Equal(new HashSet<string> { "r" }, sa.Rooms);
        server.Io.To(sa.Id).Emit("to-id");
        server.Io.To("r").Emit("to-r");
        await a.ExpectAsync("42[\"to-r\"]");

        sa.Join(sa.Id, "s");
        Assert.Equal(new HashSet<string> { sa.Id, "r", "s" }, sa.Rooms);
        server.Io.To(sa.Id).Emit("to-id");
        await a.ExpectAsync("42[\"to-id\"]");
    }

    [Fact]
    public async Task SocketTo_ExcludesTheSender()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;
        sa.Join("r");
        sb.Join("r");

        sa.To("r").Emit("from-a");

        await b.ExpectAsync("42[\"from-a\"]");
        await ExpectMarkerAsync(a, sa);
        await ExpectMarkerAsync(c, sc);
    }

    [Fact]
    public async Task SocketBroadcast_ReachesEveryoneButTheSender()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;

        sa.Broadcast.Emit("hello", "all");

        await b.ExpectAsync("42[\"hello\",\"all\"]");
        await c.ExpectAsync("42[\"hello\",\"all\"]");
        await ExpectMarkerAsync(a, sa);
        await ExpectMarkerAsync(b, sb);
        await ExpectMarkerAsync(c, sc);
    }

    [Fact]
    public async Task In_SelectsLikeTo()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");

        server.Io.In("r").Emit("in", 1);
        server.Io.Of("/").In("r").Emit("in", 2);
        server.Io.Of("/").Local.In("r").Emit("in", 3);
        sb.In("r").Emit("in", 4);

        await a.ExpectAsync("42[\"in\",1]");
        await a.ExpectAsync("42[\"in\",2]");
        await a.ExpectAsync("42[\"in\",3]");
        await a.ExpectAsync("42[\"in\",4]");
        await ExpectMarkerAsync(b, sb);
    }

    [Fact]
    public async Task Volatile_IsDeliveredToAConnectedClient()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        await using var _a = a;
        sa.Join("r");

        server.Io.Of("/").Volatile.Emit("v", 1);
        server.Io.Of("/").Volatile.To("r").Emit("v", 2);
        sa.Volatile.Emit("v", 3);

        await a.ExpectAsync("42[\"v\",1]");
        await a.ExpectAsync("42[\"v\",2]");
        await a.ExpectAsync("42[\"v\",3]");
    }

    [Fact]
    public async Task Local_BroadcastsLikeANormalBroadcastOnOneNode()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");

        server.Io.Of("/").Local.Emit("everyone");
        server.Io.Of("/").Local.To("r").Emit("room");

        await a.ExpectAsync("42[\"everyone\"]");
        await a.ExpectAsync("42[\"room\"]");
        await b.ExpectAsync("42[\"everyone\"]");
        await ExpectMarkerAsync(b, sb);
    }

    [Fact]
    public async Task Broadcast_StaysInItsNamespace()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/other"));
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync("/other");
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");
        sb.Join("r");

        server.Io.Of("/other").To("r").Emit("o");

        await b.ExpectAsync("42/other,[\"o\"]");
        await ExpectMarkerAsync(a, sa);
    }

    [Fact]
    public async Task FetchSockets_ReturnsIdsRoomsAndData()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync(auth: "{\"token\":\"t-a\"}");
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");
        sa.Data["user"] = "alice";

        var inRoom = await server.Io.In("r").FetchSocketsAsync();
        var remote = Assert.Single(inRoom);
        Assert.Equal(sa.Id, remote.Id);
        Assert.Equal(new HashSet<string> { sa.Id, "r" }, remote.Rooms);
        Assert.Equal("alice", remote.Data["user"]);
        Assert.Equal("t-a", remote.Auth.GetProperty("token").GetString());

        var all = await server.Io.Of("/").FetchSocketsAsync();
        Assert.Equal(new[] { sa.Id, sb.Id }.Order(StringComparer.Ordinal), all.Select(s => s.Id).Order(StringComparer.Ordinal));

        var excluded = await server.Io.Except("r").FetchSocketsAsync();
        Assert.Equal(sb.Id, Assert.Single(excluded).Id);

        // a RemoteSocket of this node acts on the real socket
        remote.Emit("via-remote", 5);
        await a.ExpectAsync("42[\"via-remote\",5]");
    }

    [Fact]
    public async Task SocketsJoin_AddsTheSelectedSocketsToRooms()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");

        server.Io.In("r").SocketsJoin("s1", "s2");

        Assert.Equal(new HashSet<string> { sa.Id, "r", "s1", "s2" }, sa.Rooms);
        Assert.Equal(new HashSet<string> { sb.Id }, sb.Rooms);
        server.Io.To("s2").Emit("s2");
        await a.ExpectAsync("42[\"s2\"]");
        await ExpectMarkerAsync(b, sb);
    }

    [Fact]
    public async Task SocketsLeave_RemovesTheSelectedSocketsFromRooms()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r", "keep");
        sb.Join("r", "keep");

        server.Io.Of("/").In(sa.Id).SocketsLeave("r");

        Assert.Equal(new HashSet<string> { sa.Id, "keep" }, sa.Rooms);
        Assert.Equal(new HashSet<string> { sb.Id, "r", "keep" }, sb.Rooms);

        server.Io.Of("/").SocketsLeave("keep");
        Assert.DoesNotContain("keep", sa.Rooms);
        Assert.DoesNotContain("keep", sb.Rooms);

        server.Io.To("r").Emit("r");
        await b.ExpectAsync("42[\"r\"]");
        await ExpectMarkerAsync(a, sa);
    }

    [Fact]
    public async Task DisconnectSockets_SendsDisconnectAndKeepsTheConnection()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        var reasonA = new Signal<string>();
        sa.OnDisconnect(reasonA.Set);
        sa.Join("r");

        server.Io.In("r").DisconnectSockets();

        await a.ExpectAsync("41");
        Assert.Equal("server namespace disconnect", await reasonA.WaitAsync());
        Assert.False(sa.Connected);
        Assert.Empty(sa.Rooms);
        await ExpectMarkerAsync(b, sb);

        // the Engine.IO connection is still open: the client can join the namespace again
        var again = await a.ConnectAsync();
        Assert.NotEqual(sa.Id, again);
        Assert.False(a.Ws.IsClosed);

        server.Io.Of("/").DisconnectSockets();
        await a.ExpectAsync("41");
        await b.ExpectAsync("41");
    }

    [Fact]
    public async Task DisconnectSocketsClose_SendsDisconnectThenClosesTheConnection()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        var reasonA = new Signal<string>();
        sa.OnDisconnect(reasonA.Set);
        sa.Join("r");

        server.Io.In("r").DisconnectSockets(close: true);

        await a.ExpectAsync("41");
        await a.WaitForCloseAsync();
        Assert.Equal("server namespace disconnect", await reasonA.WaitAsync());
        await ExpectMarkerAsync(b, sb);
        Assert.False(b.Ws.IsClosed);
    }
}
