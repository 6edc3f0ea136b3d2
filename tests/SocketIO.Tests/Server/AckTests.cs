namespace SocketIO.Tests.Server;

/// <summary>Acknowledgements requested by the server, from one socket or from a broadcast.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class AckTests
{
    /// <summary>Reads the next EVENT with an ack id, checks its payload and returns the id.</summary>
    private static async Task<long> ExpectEventWithAckAsync(SioClient client, string expectedJson)
    {
        var packet = TextPacket.Parse(await client.NextAsync());
        Assert.Equal(2, packet.Type);
        Assert.Equal(expectedJson, packet.Json);
        return Assert.IsType<long>(packet.Id);
    }

    [Fact]
    public async Task BroadcastEmitWithAck_CollectsOneAckPerClient()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        var (c, sc) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;

        var pending = server.Io.Of("/").Timeout(TimeSpan.FromSeconds(5)).EmitWithAckAsync("question", [42]);

        var clients = new[] { (a, "\"from-a\""), (b, "\"from-b\""), (c, "\"from-c\"") };
        foreach (var (client, answer) in clients)
        {
            var id = await ExpectEventWithAckAsync(client, "[\"question\",42]");
            await client.SendAsync($"43{id}[{answer},1]");
        }

        var responses = await pending.WaitAsync(SioTestServer.Deadline);
        Assert.Equal(3, responses.Count);
        var bySocket = responses.ToDictionary(r => r.SocketId, r => r.GetArg<string>(0));
        Assert.Equal("from-a", bySocket[sa.Id]);
        Assert.Equal("from-b", bySocket[sb.Id]);
        Assert.Equal("from-c", bySocket[sc.Id]);
        Assert.All(responses, r =>
        {
            Assert.Equal(2, r.Count);
            Assert.Equal(1, r.GetArg<int>(1));
        });
    }

    [Fact]
    public async Task BroadcastEmitWithAck_ThrowsTimeoutWhenOneClientDoesNotAck()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, _) = await server.ConnectAsync();
        var (b, _) = await server.ConnectAsync();
        var (c, _) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        await using var _c = c;

        var pending = server.Io.Of("/").Timeout(TimeSpan.FromMilliseconds(300)).EmitWithAckAsync("question", []);

        var idA = await ExpectEventWithAckAsync(a, "[\"question\"]");
        var idB = await ExpectEventWithAckAsync(b, "[\"question\"]");
        await ExpectEventWithAckAsync(c, "[\"question\"]");
        await a.SendAsync($"43{idA}[]");
        await b.SendAsync($"43{idB}[]");

        await Assert.ThrowsAsync<TimeoutException>(() => pending.WaitAsync(SioTestServer.Deadline));
    }

    [Fact]
    public async Task BroadcastEmitWithAck_ToARoomWaitsOnlyForItsMembers()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        var (b, sb) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;
        sa.Join("r");

        var pending = server.Io.To("r").Timeout(TimeSpan.FromSeconds(5)).EmitWithAckAsync("q", ["x"]);
        var id = await ExpectEventWithAckAsync(a, "[\"q\",\"x\"]");
        await a.SendAsync($"43{id}[\"ok\"]");

        var response = Assert.Single(await pending.WaitAsync(SioTestServer.Deadline));
        Assert.Equal(sa.Id, response.SocketId);
        sb.Emit("marker");
        await b.ExpectAsync("42[\"marker\"]");
    }

    [Fact]
    public async Task SocketEmitWithAck_ReturnsTheClientsAckArguments()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        await using var _a = a;

        var pending = sa.EmitWithAckAsync("ping-me", ["hi", 2], TimeSpan.FromSeconds(5));
        var id = await ExpectEventWithAckAsync(a, "[\"ping-me\",\"hi\",2]");
        await a.SendAsync($"43{id}[\"pong\",{{\"n\":7}}]");

        var response = await pending.WaitAsync(SioTestServer.Deadline);
        Assert.Equal(sa.Id, response.SocketId);
        Assert.Equal(2, response.Count);
        Assert.Equal("pong", response.GetArg<string>(0));
        Assert.Equal(7, response[1].GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task SocketEmitWithAck_InCustomNamespace_ReturnsTheAck()
    {
        await using var server = await SioTestServer.StartAsync();
        server.Track(server.Io.Of("/custom"));
        var (a, sa) = await server.ConnectAsync("/custom");
        await using var _a = a;

        var pending = sa.EmitWithAckAsync("q", [], TimeSpan.FromSeconds(5));
        var packet = TextPacket.Parse(await a.NextAsync());
        Assert.Equal("/custom", packet.Nsp);
        Assert.Equal("[\"q\"]", packet.Json);
        await a.SendAsync($"43/custom,{packet.Id}[true]");

        Assert.True((await pending.WaitAsync(SioTestServer.Deadline)).GetArg<bool>(0));
    }

    [Fact]
    public async Task SocketEmitWithAck_TimesOutWhenTheClientNeverAcks()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        await using var _a = a;

        var pending = sa.EmitWithAckAsync("ping-me", [], TimeSpan.FromMilliseconds(300));
        await ExpectEventWithAckAsync(a, "[\"ping-me\"]");

        await Assert.ThrowsAsync<TimeoutException>(() => pending.WaitAsync(SioTestServer.Deadline));
    }

    [Fact]
    public async Task SocketEmitWithAck_LateAckIsIgnored()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        await using var _a = a;
        var echoed = new Signal<string>();
        sa.On("after", ctx => echoed.Set(ctx.GetArg<string>(0)!));

        var pending = sa.EmitWithAckAsync("ping-me", [], TimeSpan.FromMilliseconds(200));
        var id = await ExpectEventWithAckAsync(a, "[\"ping-me\"]");
        await Assert.ThrowsAsync<TimeoutException>(() => pending.WaitAsync(SioTestServer.Deadline));

        // an ack for an expired id must not break the connection
        await a.SendAsync($"43{id}[\"late\"]");
        await a.SendAsync("42[\"after\",\"still-here\"]");
        Assert.Equal("still-here", await echoed.WaitAsync());
        Assert.True(sa.Connected);
    }

    [Fact]
    public async Task ClientEventWithAck_IsAnsweredByCtxAck()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, sa) = await server.ConnectAsync();
        await using var _a = a;
        sa.On("sum", ctx =>
        {
            Assert.True(ctx.HasAck);
            ctx.Ack(ctx.GetArg<int>(0) + ctx.GetArg<int>(1));
            ctx.Ack("ignored second ack");
        });

        await a.SendAsync("4217[\"sum\",2,3]");
        await a.ExpectAsync("4317[5]");
        sa.Emit("marker");
        await a.ExpectAsync("42[\"marker\"]");
    }
}
