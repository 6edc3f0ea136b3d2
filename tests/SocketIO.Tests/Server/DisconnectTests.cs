namespace SocketIO.Tests.Server;

/// <summary>Namespace disconnection from either side, and the disconnect handlers' view of the rooms.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class DisconnectTests
{
    [Fact]
    public async Task SocketDisconnect_SendsDisconnectPacketForItsNamespace()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/nsp"));
        var (client, main) = await server.ConnectAsync();
        await using var _cl = client;
        var nspId = await client.ConnectAsync("/nsp");
        var socket = await server.SocketAsync(client, nspId);
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        socket.Disconnect();

        await client.ExpectAsync("41/nsp,");
        Assert.Equal("server namespace disconnect", await reason.WaitAsync());
        Assert.False(socket.Connected);
        Assert.False(server.Io.Of("/nsp").Sockets.ContainsKey(nspId));

        // the main namespace is untouched
        Assert.True(main.Connected);
        main.Emit("marker");
        await client.ExpectAsync("42[\"marker\"]");
    }

    [Fact]
    public async Task SocketDisconnectClose_ClosesTheWholeConnection()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/nsp"));
        var (client, main) = await server.ConnectAsync();
        await using var _cl = client;
        var socket = await server.SocketAsync(client, await client.ConnectAsync("/nsp"));
        var mainReason = new Signal<string>();
        main.OnDisconnect(mainReason.Set);

        socket.Disconnect(close: true);

        var packets = new List<string> { await client.NextAsync(), await client.NextAsync() };
        Assert.Equal(new[] { "41", "41/nsp," }.Order(StringComparer.Ordinal), packets.Order(StringComparer.Ordinal));
        await client.WaitForCloseAsync();
        await mainReason.WaitAsync();
        Assert.False(main.Connected);
    }

    [Fact]
    public async Task ClientDisconnectPacket_ReasonIsClientNamespaceDisconnect()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/nsp"));
        var (client, main) = await server.ConnectAsync();
        await using var _cl = client;
        var socket = await server.SocketAsync(client, await client.ConnectAsync("/nsp"));
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await client.SendAsync("41/nsp,");

        Assert.Equal("client namespace disconnect", await reason.WaitAsync());
        Assert.False(socket.Connected);
        Assert.True(main.Connected);
        main.Emit("marker");
        await client.ExpectAsync("42[\"marker\"]");
    }

    [Fact]
    public async Task ClientDisconnectPacket_MainNamespace()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await client.SendAsync("41");

        Assert.Equal("client namespace disconnect", await reason.WaitAsync());
        Assert.Empty(server.Io.Sockets.Sockets);
    }

    [Fact]
    public async Task ClientClosesWebSocket_ReasonIsTransportClose()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        var reason = new Signal<string>();
        socket.OnDisconnect(reason.Set);

        await client.DisposeAsync();

        Assert.Equal("transport close", await reason.WaitAsync());
        Assert.False(socket.Connected);
    }

    [Fact]
    public async Task Disconnecting_SeesTheRooms_Disconnect_AfterTheRoomsWereLeft()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        var (other, _) = await server.ConnectAsync();
        await using var _o = other;
        socket.Join("r1", "r2");
        var whileDisconnecting = new Signal<(string Reason, HashSet<string> Rooms, bool InRoomSockets)>();
        var afterDisconnect = new Signal<(string Reason, HashSet<string> Rooms, bool InRoomSockets)>();
        socket.OnDisconnecting(reason => whileDisconnecting.Set(
            (reason, socket.Rooms.ToHashSet(), server.Io.Sockets.Adapter.Sockets(new HashSet<string> { "r1" }).Contains(socket.Id))));
        socket.OnDisconnect(reason => afterDisconnect.Set(
            (reason, socket.Rooms.ToHashSet(), server.Io.Sockets.Adapter.Sockets(new HashSet<string> { "r1" }).Contains(socket.Id))));

        await client.DisposeAsync();

        var disconnecting = await whileDisconnecting.WaitAsync();
        Assert.Equal("transport close", disconnecting.Reason);
        Assert.Equal(new HashSet<string> { socket.Id, "r1", "r2" }, disconnecting.Rooms);
        Assert.True(disconnecting.InRoomSockets);

        var disconnected = await afterDisconnect.WaitAsync();
        Assert.Equal("transport close", disconnected.Reason);
        Assert.Empty(disconnected.Rooms);
        Assert.False(disconnected.InRoomSockets);
        Assert.DoesNotContain("r1", server.Io.Sockets.Adapter.Rooms);
    }
}
