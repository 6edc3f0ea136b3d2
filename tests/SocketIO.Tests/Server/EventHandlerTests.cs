using System.Collections.Concurrent;

namespace SocketIO.Tests.Server;

/// <summary>A socket's event handlers (found by name, added in order, removed, the catch-all, their concurrency) and its disconnect handlers.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class EventHandlerTests
{
    private static void Register(SocketIOSocket socket, string eventName, string tag) =>
        socket.On(eventName, ctx => ctx.Socket.Emit("got", ctx.EventName, tag));

    // a few handlers are kept in an array, many in a dictionary: both sides of the switch
    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(20)]
    public async Task On_FindsTheHandlersByName_ASecondOnAddsOne_OnAnyGetsTheRest(int count)
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
            await client.ExpectAsync($"42[\"got\",\"ev{i}\",\"first\"]");
            var added = (i == 0 ? 1 : 0) + (i == count - 1 ? 1 : 0);
            for (var k = 0; k < added; k++)
            {
                await client.ExpectAsync($"42[\"got\",\"ev{i}\",\"second\"]");
            }
        }

        // names are compared ordinally
        await client.SendAsync("42[\"EV0\"]");
        await client.ExpectAsync("42[\"any\",\"EV0\"]");
        await client.SendAsync($"42[\"ev{count}\"]");
        await client.ExpectAsync($"42[\"any\",\"ev{count}\"]");
    }

    [Fact]
    public async Task Off_RemovesOneHandler_OrEveryHandlerOfTheEvent()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        Action<SocketEventContext> a = ctx => ctx.Socket.Emit("got", "a");
        Action<SocketEventContext> b = ctx => ctx.Socket.Emit("got", "b");
        socket.On("ev", a);
        socket.On("ev", b);
        socket.On("ev", a);
        socket.OnAny(ctx =>
        {
            ctx.Socket.Emit("any", ctx.EventName);
            return ValueTask.CompletedTask;
        });

        // the last a added is removed: a, b remain, in order
        socket.Off("ev", a);
        await client.SendAsync("42[\"ev\"]");
        await client.ExpectAsync("42[\"got\",\"a\"]");
        await client.ExpectAsync("42[\"got\",\"b\"]");

        // removing a handler that is not there changes nothing; Off(name) removes all
        socket.Off("other", a);
        socket.Off("ev");
        await client.SendAsync("42[\"ev\"]");
        await client.ExpectAsync("42[\"any\",\"ev\"]");
    }

    [Fact]
    public async Task Sequential_TheDefault_RunsOneEventOfASocketAtATime_HandlersInOrder()
    {
        await using var server = await SioTestServer.StartAsync();
        Assert.Equal(HandlerConcurrency.Sequential, server.Io.Options.HandlerConcurrency);
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new ConcurrentQueue<string>();
        socket.On("slow", async ctx =>
        {
            log.Enqueue("slow 1 start");
            await release.Task;
            log.Enqueue("slow 1 end");
        });
        socket.On("slow", ctx => log.Enqueue("slow 2"));
        socket.On("fast", ctx =>
        {
            log.Enqueue("fast");
            ctx.Socket.Emit("done", string.Join("|", log));
        });

        await client.SendAsync("42[\"slow\"]");
        await client.SendAsync("42[\"fast\"]");
        await client.SendAsync("42[\"slow\"]");
        await client.SendAsync("42[\"fast\"]");

        // nothing after the first slow handler runs until it completes
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (log.IsEmpty && DateTime.UtcNow < deadline)
        {
            await Task.Yield();
        }

        Assert.Equal(new[] { "slow 1 start" }, log.ToArray());
        release.SetResult();
        await client.ExpectAsync("42[\"done\",\"slow 1 start|slow 1 end|slow 2|fast\"]");
        await client.ExpectAsync("42[\"done\",\"slow 1 start|slow 1 end|slow 2|fast|slow 1 start|slow 1 end|slow 2|fast\"]");
    }

    [Fact]
    public async Task Concurrent_StartsEachEventsHandlersAsItArrives_AsNode()
    {
        await using var server = await SioTestServer.StartAsync(o => o.HandlerConcurrency = HandlerConcurrency.Concurrent);
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        socket.On("slow", async ctx =>
        {
            await release.Task;
            ctx.Socket.Emit("done", "slow");
        });
        socket.On("fast", ctx => ctx.Socket.Emit("done", "fast"));

        await client.SendAsync("42[\"slow\"]");
        await client.SendAsync("42[\"fast\"]");
        await client.ExpectAsync("42[\"done\",\"fast\"]");
        release.SetResult();
        await client.ExpectAsync("42[\"done\",\"slow\"]");
    }

    [Fact]
    public async Task Sequential_AClientFloodingASlowHandler_IsDisconnected_AtTheQueueBound()
    {
        await using var server = await SioTestServer.StartAsync(o => o.MaxQueuedEventsPerSocket = 4);
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var disconnected = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        socket.OnDisconnect(reason => disconnected.TrySetResult(reason));
        socket.On("slow", async ctx => await release.Task);
        for (var i = 0; i < 6; i++)
        {
            await client.SendAsync("42[\"slow\"]");
        }

        var reason = await disconnected.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains(reason, new[] { DisconnectReason.ServerNamespaceDisconnect, DisconnectReason.ForcedClose });
        release.SetResult();
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
