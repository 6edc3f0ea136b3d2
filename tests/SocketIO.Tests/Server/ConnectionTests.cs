using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SocketIO.Tests.Server;

/// <summary>Middleware, dynamic namespaces and the handshake a socket sees.</summary>
[Collection(ServerTestGroup.Name)]
public sealed partial class ConnectionTests
{
    [Fact]
    public async Task Middleware_RunsInOrderBeforeTheConnectionHandler()
    {
        await using var server = await SioTestServer.StartAsync();
        var order = new ConcurrentQueue<string>();
        var nsp = server.Io.Of("/");
        nsp.Use((socket, _) =>
        {
            order.Enqueue("first");
            socket.Data["first"] = 1;
            return ValueTask.CompletedTask;
        });
        nsp.Use(async (socket, ct) =>
        {
            await Task.Yield();
            Assert.Equal(1, socket.Data["first"]);
            order.Enqueue("second");
            socket.Data["user"] = "alice";
        });
        nsp.Use((_, _) =>
        {
            order.Enqueue("third");
            return ValueTask.CompletedTask;
        });
        var seen = new Signal<object?>();
        nsp.OnConnection(socket =>
        {
            order.Enqueue("connection");
            seen.Set(socket.Data.TryGetValue("user", out var user) ? user : null);
        });

        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;

        Assert.Equal("alice", await seen.WaitAsync());
        Assert.Equal(["first", "second", "third", "connection"], order.ToArray());
        Assert.Equal("alice", socket.Data["user"]);
    }

    [Fact]
    public async Task Middleware_ConnectRejectedException_SendsMessageAndData()
    {
        await using var server = await SioTestServer.StartAsync();
        var laterRan = false;
        server.Io.Of("/").Use((_, _) => throw new ConnectRejectedException("Authentication failed", new { code = "TOKEN_MISSING", retry = false }));
        server.Io.Of("/").Use((_, _) =>
        {
            laterRan = true;
            return ValueTask.CompletedTask;
        });

        await using var client = await SioClient.OpenAsync(server);
        await client.SendAsync("40");

        var reply = await client.NextAsync();
        Assert.Equal("44{\"message\":\"Authentication failed\",\"data\":{\"code\":\"TOKEN_MISSING\",\"retry\":false}}", reply);
        Assert.False(laterRan);
        Assert.Empty(server.Io.Sockets.Sockets);
    }

    [Fact]
    public async Task Middleware_PlainException_SendsMessageOnly()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/secure")).Use(async (_, _) =>
        {
            await Task.Yield();
            throw new InvalidOperationException("not allowed");
        });

        await using var client = await SioClient.OpenAsync(server);
        await client.SendAsync("40/secure,");

        await client.ExpectAsync("44/secure,{\"message\":\"not allowed\"}");

        // the connection stays usable for other namespaces
        var sid = await client.ConnectAsync("/");
        Assert.Equal(sid, (await server.SocketAsync(client, sid)).Id);
    }

    [Fact]
    public async Task Middleware_CanRejectBasedOnAuth()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Io.Of("/").Use((socket, _) =>
            socket.Handshake.AuthString("token") == "good" ? ValueTask.CompletedTask : throw new ConnectRejectedException("bad token"));

        await using var refused = await SioClient.OpenAsync(server);
        await refused.SendAsync("40{\"token\":\"bad\"}");
        await refused.ExpectAsync("44{\"message\":\"bad token\"}");

        await using var accepted = await SioClient.OpenAsync(server);
        var sid = await accepted.ConnectAsync(auth: "{\"token\":\"good\"}");
        Assert.Equal("good", (await server.SocketAsync(accepted, sid)).Handshake.AuthString("token"));
    }

    [Fact]
    public async Task DynamicNamespace_Predicate_CreatesSeparateChildrenSharingMiddlewareAndHandlers()
    {
        await using var server = await SioTestServer.StartAsync();
        var parent = server.Track(server.Io.Of((name, _) => name.StartsWith("/dyn-", StringComparison.Ordinal)));
        var middlewareRuns = new ConcurrentQueue<string>();
        parent.Use((socket, _) =>
        {
            middlewareRuns.Enqueue(socket.Namespace.Name);
            socket.Data["mw"] = "parent";
            return ValueTask.CompletedTask;
        });
        parent.OnConnection(socket => socket.Emit("welcome", socket.Namespace.Name, socket.Data["mw"]));

        await using var one = await SioClient.OpenAsync(server);
        await using var two = await SioClient.OpenAsync(server);
        var s1 = await server.SocketAsync(one, await one.ConnectAsync("/dyn-1"));
        var s2 = await server.SocketAsync(two, await two.ConnectAsync("/dyn-2"));
        await one.ExpectAsync("42/dyn-1,[\"welcome\",\"/dyn-1\",\"parent\"]");
        await two.ExpectAsync("42/dyn-2,[\"welcome\",\"/dyn-2\",\"parent\"]");

        Assert.Equal("/dyn-1", s1.Namespace.Name);
        Assert.Equal("/dyn-2", s2.Namespace.Name);
        Assert.NotSame(s1.Namespace, s2.Namespace);
        Assert.Same(s1.Namespace, server.Io.Of("/dyn-1"));
        Assert.Equal(["/dyn-1", "/dyn-2"], middlewareRuns.Order(StringComparer.Ordinal).ToArray());

        // separate namespaces: a broadcast in one does not reach the other
        server.Io.Of("/dyn-1").Emit("only-1");
        await one.ExpectAsync("42/dyn-1,[\"only-1\"]");
        s2.Emit("marker");
        await two.ExpectAsync("42/dyn-2,[\"marker\"]");

        // emitting on the parent reaches every child
        parent.Emit("all");
        await one.ExpectAsync("42/dyn-1,[\"all\"]");
        await two.ExpectAsync("42/dyn-2,[\"all\"]");

        // a second connection to an existing child joins the same namespace
        await using var three = await SioClient.OpenAsync(server);
        var s3 = await server.SocketAsync(three, await three.ConnectAsync("/dyn-1"));
        Assert.Same(s1.Namespace, s3.Namespace);
    }

    [Fact]
    public async Task DynamicNamespace_Predicate_RejectsOtherNames()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Io.Of((name, _) => name.StartsWith("/dyn-", StringComparison.Ordinal));

        await using var client = await SioClient.OpenAsync(server);
        await client.SendAsync("40/other,");

        await client.ExpectAsync("44/other,{\"message\":\"Invalid namespace\"}");
    }

    [Fact]
    public async Task DynamicNamespace_PredicateSeesTheAuth()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of((name, auth) => name == "/tenant" && auth.ValueKind == JsonValueKind.Object && auth.TryGetProperty("tenant", out _)));

        await using var refused = await SioClient.OpenAsync(server);
        await refused.SendAsync("40/tenant,{}");
        await refused.ExpectAsync("44/tenant,{\"message\":\"Invalid namespace\"}");

        await using var accepted = await SioClient.OpenAsync(server);
        await accepted.ConnectAsync("/tenant", "{\"tenant\":\"t1\"}");
    }

    [GeneratedRegex("^/rx-\\d+$")]
    private static partial Regex DynamicPattern();

    [Fact]
    public async Task DynamicNamespace_Regex_AcceptsMatchesAndRejectsOthers()
    {
        await using var server = await SioTestServer.StartAsync();
        var parent = server.Track(server.Io.Of(DynamicPattern()));
        parent.Use((socket, _) =>
        {
            socket.Data["checked"] = true;
            return ValueTask.CompletedTask;
        });
        parent.OnConnection(socket => socket.Emit("hi", socket.Namespace.Name, socket.Data.ContainsKey("checked")));

        await using var client = await SioClient.OpenAsync(server);
        var s1 = await server.SocketAsync(client, await client.ConnectAsync("/rx-1"));
        await client.ExpectAsync("42/rx-1,[\"hi\",\"/rx-1\",true]");
        var s2 = await server.SocketAsync(client, await client.ConnectAsync("/rx-22"));
        await client.ExpectAsync("42/rx-22,[\"hi\",\"/rx-22\",true]");
        Assert.NotSame(s1.Namespace, s2.Namespace);

        await client.SendAsync("40/rx-a,");
        await client.ExpectAsync("44/rx-a,{\"message\":\"Invalid namespace\"}");
    }

    [Fact]
    public async Task StaticNamespace_TakesPrecedenceOverADynamicOne()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/dyn-static")).OnConnection(s => s.Emit("kind", "static"));
        server.Track(server.Io.Of((name, _) => name.StartsWith("/dyn-", StringComparison.Ordinal))).OnConnection(s => s.Emit("kind", "dynamic"));

        await using var client = await SioClient.OpenAsync(server);
        await client.ConnectAsync("/dyn-static");
        await client.ExpectAsync("42/dyn-static,[\"kind\",\"static\"]");
        await client.ConnectAsync("/dyn-x");
        await client.ExpectAsync("42/dyn-x,[\"kind\",\"dynamic\"]");
    }

    [Fact]
    public async Task Handshake_AuthEqualsWhatWasSent()
    {
        await using var server = await SioTestServer.StartAsync();
        const string auth = "{\"token\":\"abc\",\"n\":1,\"nested\":{\"list\":[1,\"two\",null]}}";

        var (client, socket) = await server.ConnectAsync(auth: auth);
        await using var _c = client;

        Assert.Equal(JsonValueKind.Object, socket.Handshake.Auth.ValueKind);
        Assert.Equal(auth, socket.Handshake.Auth.GetRawText());
        Assert.Equal("abc", socket.Handshake.AuthString("token"));
        Assert.Null(socket.Handshake.AuthString("n"));
    }

    [Fact]
    public async Task Handshake_AuthIsAnEmptyObjectWhenNoneWasSent()
    {
        await using var server = await SioTestServer.StartAsync();

        var (client, socket) = await server.ConnectAsync();
        await using var _c = client;

        Assert.Equal(JsonValueKind.Object, socket.Handshake.Auth.ValueKind);
        Assert.Equal("{}", socket.Handshake.Auth.GetRawText());
    }

    [Fact]
    public async Task Handshake_QueryHeadersAndAddress()
    {
        await using var server = await SioTestServer.StartAsync();

        await using var client = await SioClient.OpenAsync(server, "&room=lobby&user=al%20ice");
        var socket = await server.SocketAsync(client, await client.ConnectAsync());

        Assert.Equal("lobby", socket.Handshake.Query["room"]);
        Assert.Equal("al ice", socket.Handshake.Query["user"]);
        Assert.Equal("4", socket.Handshake.Query["EIO"]);
        Assert.Equal("websocket", socket.Handshake.Query["transport"]);
        Assert.Contains("room=lobby", socket.Handshake.Url, StringComparison.Ordinal);
        Assert.Equal($"127.0.0.1:{server.Port}", socket.Handshake.Headers["host"]);
        Assert.NotNull(socket.Handshake.Address);
        Assert.True(System.Net.IPAddress.IsLoopback(socket.Handshake.Address!));
        Assert.False(socket.Handshake.Secure);
        Assert.InRange(socket.Handshake.Time, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1));
    }

    [Fact]
    public async Task ConnectTimeout_ClosesAConnectionThatNeverSendsConnect()
    {
        await using var server = await SioTestServer.StartAsync(o => o.ConnectTimeout = TimeSpan.FromMilliseconds(300));

        // the joined client's connect timer starts first, so it has run by the time the idle one closes
        await using var joined = await SioClient.OpenAsync(server);
        var socket = await server.SocketAsync(joined, await joined.ConnectAsync());
        await using var idle = await SioClient.OpenAsync(server);

        await idle.WaitForCloseAsync();

        // the client that joined a namespace in time stays connected past the timeout
        Assert.False(joined.Ws.IsClosed);
        Assert.True(socket.Connected);
        socket.Emit("marker");
        await joined.ExpectAsync("42[\"marker\"]");
    }

    [Fact]
    public async Task SeveralNamespaces_OnOneConnection_EachGetsItsOwnPackets_AndAllCloseWithIt()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/a"));
        server.Track(server.Io.Of("/b"));
        var (client, main) = await server.ConnectAsync();
        var a = await server.SocketAsync(client, await client.ConnectAsync("/a"));
        var b = await server.SocketAsync(client, await client.ConnectAsync("/b"));
        static void Who(SocketIOSocket socket) => socket.On("who", ctx => ctx.Socket.Emit("me", ctx.Socket.Namespace.Name));
        Who(main);
        Who(a);
        Who(b);

        await client.SendAsync("42/b,[\"who\"]");
        await client.ExpectAsync("42/b,[\"me\",\"/b\"]");
        await client.SendAsync("42[\"who\"]");
        await client.ExpectAsync("42[\"me\",\"/\"]");
        await client.SendAsync("42/a,[\"who\"]");
        await client.ExpectAsync("42/a,[\"me\",\"/a\"]");

        // the first namespace is left and joined again: a new socket, the others untouched
        var left = new Signal<string>();
        main.OnDisconnect(left.Set);
        await client.SendAsync("41");
        Assert.Equal("client namespace disconnect", await left.WaitAsync());
        var again = await server.SocketAsync(client, await client.ConnectAsync());
        Assert.NotSame(main, again);
        Who(again);
        await client.SendAsync("42[\"who\"]");
        await client.ExpectAsync("42[\"me\",\"/\"]");
        await client.SendAsync("42/b,[\"who\"]");
        await client.ExpectAsync("42/b,[\"me\",\"/b\"]");

        var reasons = new[] { new Signal<string>(), new Signal<string>(), new Signal<string>() };
        again.OnDisconnect(reasons[0].Set);
        a.OnDisconnect(reasons[1].Set);
        b.OnDisconnect(reasons[2].Set);
        await client.DisposeAsync();
        foreach (var reason in reasons)
        {
            Assert.Equal("transport close", await reason.WaitAsync());
        }
    }
}
