using System.Net;
using System.Net.WebSockets;
using EngineIO;

namespace SocketIO.Tests.Server;

/// <summary>The Engine.IO options a host sets: transports, CORS with credentials, the AllowRequest hook.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class EngineOptionsTests
{
    [Fact]
    public async Task WebSocketOnly_RefusesPollingAndOffersNoUpgrade()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.Transports = [EngineIOOptions.WebSocket]);
        var (status, body) = await server.GetAsync(string.Empty);
        Assert.Equal(400, status);
        Assert.Equal("{\"code\":0,\"message\":\"Transport unknown\"}", body);

        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(server.WsUri(), CancellationToken.None);
        var buffer = new byte[1024];
        var open = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(SioTestServer.Deadline);
        var text = System.Text.Encoding.UTF8.GetString(buffer, 0, open.Count);
        Assert.StartsWith("0{", text, StringComparison.Ordinal);
        Assert.Contains("\"upgrades\":[]", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PollingOnly_RefusesWebSocketAndOffersNoUpgrade()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.Transports = [EngineIOOptions.Polling]);
        var (status, body) = await server.GetAsync(string.Empty);
        Assert.Equal(200, status);
        Assert.Contains("\"upgrades\":[]", body, StringComparison.Ordinal);

        using var ws = new ClientWebSocket();
        await Assert.ThrowsAnyAsync<WebSocketException>(() => ws.ConnectAsync(server.WsUri(), CancellationToken.None).WaitAsync(SioTestServer.Deadline));
    }

    [Fact]
    public async Task Cors_WithCredentials_EchoesAllowedOriginsOnly()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.Cors = new EngineCorsOptions { Origins = ["http://app.test"], Credentials = true });

        using var allowed = new HttpRequestMessage(HttpMethod.Get, server.HttpUri(string.Empty));
        allowed.Headers.Add("Origin", "http://app.test");
        using var ok = await server.Http.SendAsync(allowed);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("http://app.test", Assert.Single(ok.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Equal("true", Assert.Single(ok.Headers.GetValues("Access-Control-Allow-Credentials")));

        using var preflight = new HttpRequestMessage(HttpMethod.Options, server.HttpUri(string.Empty));
        preflight.Headers.Add("Origin", "http://app.test");
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "content-type");
        using var pre = await server.Http.SendAsync(preflight);
        Assert.Equal(HttpStatusCode.NoContent, pre.StatusCode);
        Assert.Equal("http://app.test", Assert.Single(pre.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Contains("POST", Assert.Single(pre.Headers.GetValues("Access-Control-Allow-Methods")), StringComparison.Ordinal);
        Assert.Equal("content-type", Assert.Single(pre.Headers.GetValues("Access-Control-Allow-Headers")));

        using var foreign = new HttpRequestMessage(HttpMethod.Get, server.HttpUri(string.Empty));
        foreign.Headers.Add("Origin", "http://evil.test");
        using var refused = await server.Http.SendAsync(foreign);
        Assert.False(refused.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task AllowRequest_RefusesWith403AndItsMessage_ForPollingAndWebSocket()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.AllowRequest = context =>
            ValueTask.FromResult(context.Request.Headers.Origin == "http://evil.test" ? "Origin not allowed" : null));

        using var request = new HttpRequestMessage(HttpMethod.Get, server.HttpUri(string.Empty));
        request.Headers.Add("Origin", "http://evil.test");
        using var response = await server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Equal("{\"code\":4,\"message\":\"Origin not allowed\"}", await response.Content.ReadAsStringAsync());

        using var ws = new ClientWebSocket();
        ws.Options.SetRequestHeader("Origin", "http://evil.test");
        await Assert.ThrowsAnyAsync<WebSocketException>(() => ws.ConnectAsync(server.WsUri(), CancellationToken.None).WaitAsync(SioTestServer.Deadline));

        var (status, _) = await server.GetAsync(string.Empty);
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task WebSocketMessageOverMaxPayload_ClosesTheSessionWith1009()
    {
        await using var server = await SioTestServer.StartAsync(o => o.Engine.MaxPayload = 1000);
        using var ws = new ClientWebSocket();
        await ws.ConnectAsync(server.WsUri(), CancellationToken.None);
        var buffer = new byte[4096];
        await ws.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(SioTestServer.Deadline);

        var big = System.Text.Encoding.UTF8.GetBytes("4" + new string('x', 2000));
        await ws.SendAsync(big, WebSocketMessageType.Text, true, CancellationToken.None);
        var result = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(SioTestServer.Deadline);
        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, result.CloseStatus);
    }
}
