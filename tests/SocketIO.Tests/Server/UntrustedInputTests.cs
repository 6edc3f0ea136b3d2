using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace SocketIO.Tests.Server;

/// <summary>
/// What a client sends is not trusted (issue 16): text that is not UTF-8 is refused by the
/// transport over polling as over WebSocket and never reaches a handler, and error replies do not
/// echo unbounded client input back.
/// </summary>
[Collection(ServerTestGroup.Name)]
public sealed class UntrustedInputTests
{
    /// <summary>42["x","\xff\xfe"]: an event whose argument is not UTF-8.</summary>
    private static readonly byte[] s_notUtf8Event = [.. "42[\"x\",\""u8, 0xFF, 0xFE, .. "\"]"u8];

    /// <summary>Opens a polling session joined to "/"; returns its sid.</summary>
    private static async Task<string> OpenPollingAsync(SioTestServer server)
    {
        var (status, open) = await server.GetAsync("");
        Assert.Equal(200, status);
        string sid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            sid = json.RootElement.GetProperty("sid").GetString()!;
        }

        Assert.Equal((200, "ok"), await server.PostAsync($"&sid={sid}", "40"));
        var (pollStatus, connect) = await server.GetAsync($"&sid={sid}");
        Assert.Equal(200, pollStatus);
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        return sid;
    }

    private static async Task<(int Status, string Body)> PostBytesAsync(SioTestServer server, string sid, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        using var response = await server.Http.PostAsync(server.HttpUri($"&sid={sid}"), content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PollingBodyThatIsNotUtf8_IsRefusedWith400NamingTheProblem_AndNoHandlerRuns()
    {
        await using var server = await SioTestServer.StartAsync();
        var handled = new Signal<string>();
        var reason = new Signal<string>();
        server.Io.Sockets.OnConnection(socket =>
        {
            socket.On("x", ctx => handled.Set(ctx.GetArg<string>(0) ?? "null"));
            socket.OnDisconnect(reason.Set);
        });
        var sid = await OpenPollingAsync(server);

        var (status, body) = await PostBytesAsync(server, sid, s_notUtf8Event);
        Assert.Equal(400, status);
        using (var json = JsonDocument.Parse(body))
        {
            Assert.Equal(3, json.RootElement.GetProperty("code").GetInt32());
            Assert.Contains("UTF-8", json.RootElement.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // the session is closed as for any malformed payload; the handler never saw the event
        Assert.Equal(DisconnectReason.ParseError, await reason.WaitAsync());
        Assert.False(handled.IsSet);
        var (late, _) = await server.GetAsync($"&sid={sid}");
        Assert.Equal(400, late);
    }

    [Fact]
    public async Task PollingBody_ValidUtf8OfEveryWidth_StillReachesTheHandler()
    {
        await using var server = await SioTestServer.StartAsync();
        var handled = new Signal<string>();
        server.Io.Sockets.OnConnection(socket => socket.On("x", ctx => handled.Set(ctx.GetArg<string>(0)!)));
        var sid = await OpenPollingAsync(server);

        var (status, body) = await PostBytesAsync(server, sid, Encoding.UTF8.GetBytes("42[\"x\",\"é€😀\"]"));
        Assert.Equal((200, "ok"), (status, body));
        Assert.Equal("é€😀", await handled.WaitAsync());
    }

    [Fact]
    public async Task ConnectToAnUnknownNamespaceWithAHugeName_IsAnsweredWithABoundedReply()
    {
        await using var server = await SioTestServer.StartAsync();
        await using var client = await SioClient.OpenAsync(server);
        var name = "/" + new string('n', 100_000);

        await client.SendAsync($"40{name},");
        var reply = await client.NextAsync();
        Assert.True(reply.Length < 300, $"a reply of {reply.Length} characters echoes the name");
        Assert.StartsWith("44/nnnn", reply, StringComparison.Ordinal);
        Assert.EndsWith("…,{\"message\":\"Invalid namespace\"}", reply, StringComparison.Ordinal);

        // a short name is echoed whole, as the reference server does (the client routes by it)
        await client.SendAsync("40/other,");
        await client.ExpectAsync("44/other,{\"message\":\"Invalid namespace\"}");
    }
}
