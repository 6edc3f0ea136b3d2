using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>
/// What an unauthenticated client can hold on the gateway: no main namespace, no session past the
/// connect timeout without /builder, a bounded number of sessions and handshakes per address.
/// </summary>
public sealed class SessionLimitTests
{
    private static readonly Uri Handshake = new("socket.io/?EIO=4&transport=polling", UriKind.Relative);

    /// <summary>A polling handshake: the status and body.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> HandshakeAsync(TestGateway gateway)
    {
        using var response = await gateway.Http.GetAsync(Handshake);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>A WebSocket handshake on a new connection (the connection-level fast path): the status line and, when refused, the body.</summary>
    private static async Task<(string StatusLine, string Body)> WebSocketHandshakeAsync(TestGateway gateway)
    {
        using var tcp = new TcpClient();
        using var cts = new CancellationTokenSource(TestGateway.Wait);
        await tcp.ConnectAsync(IPAddress.Loopback, gateway.Url.Port, cts.Token);
        var stream = tcp.GetStream();
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var head = $"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{gateway.Url.Port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head), cts.Token);
        var received = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            var n = await stream.ReadAsync(buffer, cts.Token);
            if (n == 0)
            {
                break;
            }

            received.AddRange(buffer.AsSpan(0, n).ToArray());
            var text = Encoding.ASCII.GetString([.. received]);
            if (text.StartsWith("HTTP/1.1 101", StringComparison.Ordinal) && text.Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                return (text[..text.IndexOf('\r', StringComparison.Ordinal)], "");
            }
        }

        var response = Encoding.ASCII.GetString([.. received]);
        var split = response.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        Assert.True(split > 0, "no response head: " + response);
        return (response[..response.IndexOf('\r', StringComparison.Ordinal)], response[(split + 4)..]);
    }

    [Fact]
    public async Task Connect_to_the_main_namespace_gets_connect_error_and_the_session_is_closed_at_the_connect_timeout()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:ConnectTimeoutSeconds"] = "1");
        var session = await RawSession.OpenAsync(gateway);
        await session.SendAsync("40");
        var answer = await session.NextAsync(p => p.StartsWith("40", StringComparison.Ordinal) || p.StartsWith("44", StringComparison.Ordinal));
        Assert.StartsWith("44{", answer, StringComparison.Ordinal);
        Assert.Equal("Invalid namespace", JsonDocument.Parse(answer[2..]).RootElement.GetProperty("message").GetString());
        Assert.True(await session.ClosedAsync(TestGateway.Wait), "the session outlived the connect timeout");
    }

    [Fact]
    public async Task A_session_with_only_a_refused_connect_is_closed_at_the_connect_timeout()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:ConnectTimeoutSeconds"] = "1");
        var session = await RawSession.OpenAsync(gateway);
        await session.SendAsync("40/builder,{\"token\":\"not-a-token\"}");
        Assert.StartsWith("44/builder,", await session.NextAsync("44/builder,"), StringComparison.Ordinal);
        Assert.True(await session.ClosedAsync(TestGateway.Wait), "the session outlived the connect timeout");

        // one that joins /builder stays
        var joined = await RawSession.OpenAsync(gateway);
        await joined.SendAsync("40/builder," + JsonSerializer.Serialize(new { token = gateway.Token("alice", ["p1"]) }));
        await joined.NextAsync("40/builder,");
        Assert.False(await joined.ClosedAsync(TimeSpan.FromSeconds(2)));
    }

    [Fact]
    public async Task Sessions_over_the_per_address_cap_are_refused_with_429_and_a_closed_one_frees_its_slot()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxConnectionsPerAddress"] = "3");
        var sessions = new List<RawSession>();
        for (var i = 0; i < 3; i++)
        {
            sessions.Add(await RawSession.OpenAsync(gateway));
        }

        var (status, body) = await HandshakeAsync(gateway);
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("{\"code\":6,\"message\":\"Too many connections from this address\"}", body);
        var (statusLine, wsBody) = await WebSocketHandshakeAsync(gateway);
        Assert.Equal("HTTP/1.1 429 Too Many Requests", statusLine);
        Assert.Equal(body, wsBody);

        // a session closes: its slot is free (the server learns it asynchronously)
        await sessions[0].SendAsync("1");
        var deadline = DateTime.UtcNow + TestGateway.Wait;
        do
        {
            (status, _) = await HandshakeAsync(gateway);
        }
        while (status != HttpStatusCode.OK && DateTime.UtcNow < deadline);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await HandshakeAsync(gateway)).Status);
    }

    [Fact]
    public async Task Handshakes_over_the_per_address_cap_are_refused_until_one_joins_builder()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:MaxHandshakesPerAddress"] = "2");
        var first = await RawSession.OpenAsync(gateway);
        await RawSession.OpenAsync(gateway);

        var (status, body) = await HandshakeAsync(gateway);
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("{\"code\":6,\"message\":\"Too many handshakes in progress from this address\"}", body);
        var (statusLine, wsBody) = await WebSocketHandshakeAsync(gateway);
        Assert.Equal("HTTP/1.1 429 Too Many Requests", statusLine);
        Assert.Equal(body, wsBody);

        // a session that joins /builder is no longer handshaking
        await first.SendAsync("40/builder," + JsonSerializer.Serialize(new { token = gateway.Token("alice", ["p1"]) }));
        await first.NextAsync("40/builder,");
        Assert.Equal(HttpStatusCode.OK, (await HandshakeAsync(gateway)).Status);
        Assert.StartsWith("HTTP/1.1 429", (await WebSocketHandshakeAsync(gateway)).StatusLine, StringComparison.Ordinal);
    }
}
