using System.Collections.Concurrent;

namespace SocketIO.Tests.Server;

/// <summary>A socket's event handlers (found by name, replaced, the catch-all) and its disconnect handlers.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class EventHandlerTests
{
    private static void Register(Socket socket, string eventName, string tag) =>
        socket.On(eventName, ctx => ctx.Socket.Emit("got", ctx.EventName, tag));

    // a few handlers are kept in an array, many in a dictionary: both sides of the switch
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(20)]
    public async Task On_FindsTheHandlerByName_ASecondOnReplacesIt_OnAnyGetsTheRest(int count)
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        for (var i = 0; i < count; i++)
        {
            Register(socket, $"ev{i}", "first");
        }

        Register(socket, "ev0", "second");
        Register(socket, $"ev{count - 1}", "second");
        socket.OnAny(ctx =>
        {
            ctx.Socket.Emit("any", ctx.EventName);
            return ValueTask.CompletedTask;
        });

        for (var i = 0; i < count; i++)
        {
            await client.SendAsync($"42[\"ev{i}\",1]");
            var tag = i == 0 || i == count - 1 ? "second" : "first";
            await client.ExpectAsync($"42[\"got\",\"ev{i}\",\"{tag}\"]");
        }

        // names are compared ordinally
        await client.SendAsync("42[\"EV0\"]");
        await client.ExpectAsync("42[\"any\",\"EV0\"]");
        await client.SendAsync($"42[\"ev{count}\"]");
        await client.ExpectAsync($"42[\"any\",\"ev{count}\"]");
    }

    [Fact]
    public async Task DisconnectHandlers_RunInOrder_AFailingOneDoesNotStopTheOthers()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var calls = new ConcurrentQueue<string>();
        var done = new Signal<string>();
        socket.OnDisconnecting(reason => calls.Enqueue("disconnecting 1: " + reason));
        socket.OnDisconnecting(_ => throw new InvalidOperationException("handler failure"));
        socket.OnDisconnecting(_ => calls.Enqueue("disconnecting 2"));
        socket.OnDisconnect(_ => calls.Enqueue("disconnect 1"));
        socket.OnDisconnect(reason =>
        {
            calls.Enqueue("disconnect 2");
            done.Set(reason);
        });

        await client.SendAsync("41");

        Assert.Equal("client namespace disconnect", await done.WaitAsync());
        Assert.Equal(["disconnecting 1: client namespace disconnect", "disconnecting 2", "disconnect 1", "disconnect 2"], calls.ToArray());
    }
}
