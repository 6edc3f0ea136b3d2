namespace SocketIO.Tests.Server;

/// <summary>
/// <see cref="SocketIOOptions.ServeMainNamespace"/> and <see cref="SocketIOSocket.OnConnectAborted"/>:
/// what an application serving only its own namespaces, or reserving something per connection in
/// middleware, relies on.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class ServedNamespaceTests
{
    [Fact]
    public async Task MainNamespaceNotServed_ConnectGetsInvalidNamespace_AndTheConnectionClosesAtTheConnectTimeout()
    {
        await using var server = await SioTestServer.StartAsync(o =>
        {
            o.ServeMainNamespace = false;
            o.ConnectTimeout = TimeSpan.FromMilliseconds(500);
        });
        server.Track(server.Io.Of("/app"));

        await using var refused = await SioClient.OpenAsync(server);
        await refused.SendAsync("40");
        await refused.ExpectAsync("44{\"message\":\"Invalid namespace\"}");
        await refused.WaitForCloseAsync();

        // a served namespace works as before
        await using var client = await SioClient.OpenAsync(server);
        var socket = await server.SocketAsync(client, await client.ConnectAsync("/app"));
        socket.Emit("hello");
        await client.ExpectAsync("42/app,[\"hello\"]");
    }

    [Fact]
    public async Task ConnectAborted_RunsWhenALaterMiddlewareRefuses_AndNotForAConnectionMade()
    {
        await using var server = await SioTestServer.StartAsync();
        var aborted = 0;
        var nsp = server.Io.Of("/app");
        server.Track(nsp);
        nsp.Use((socket, _) =>
        {
            socket.OnConnectAborted(() => Interlocked.Increment(ref aborted));
            return ValueTask.CompletedTask;
        });
        nsp.Use((socket, _) => socket.Handshake.AuthString("refuse") == "yes"
            ? throw new ConnectRejectedException("refused")
            : ValueTask.CompletedTask);

        await using var client = await SioClient.OpenAsync(server);
        await client.SendAsync("40/app,{\"refuse\":\"yes\"}");
        await client.ExpectAsync("44/app,{\"message\":\"refused\"}");
        Assert.Equal(1, Volatile.Read(ref aborted));

        var socket = await server.SocketAsync(client, await client.ConnectAsync("/app", "{\"refuse\":\"no\"}"));
        socket.Disconnect();
        await client.ExpectAsync("41/app,");
        Assert.Equal(1, Volatile.Read(ref aborted));
    }
}
