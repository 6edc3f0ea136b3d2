using System.Text.Json;
using SocketIO.Tests.Protocol;

namespace SocketIO.Tests.Server;

/// <summary>A Socket.IO packet as text: type, namespace, ack id and JSON payload (null when none).</summary>
public sealed record TextPacket(int Type, int Attachments, string Nsp, long? Id, string? Json)
{
    /// <summary>Parses an Engine.IO MESSAGE frame <c>4&lt;type&gt;[&lt;n&gt;-][&lt;nsp&gt;,][&lt;id&gt;][JSON]</c>.</summary>
    public static TextPacket Parse(string packet)
    {
        Assert.StartsWith("4", packet, StringComparison.Ordinal);
        var i = 1;
        var type = packet[i++] - '0';
        var attachments = 0;
        if (type is 5 or 6)
        {
            var dash = packet.IndexOf('-', i);
            attachments = int.Parse(packet.AsSpan(i, dash - i), System.Globalization.CultureInfo.InvariantCulture);
            i = dash + 1;
        }

        var nsp = "/";
        if (i < packet.Length && packet[i] == '/')
        {
            var comma = packet.IndexOf(',', i);
            var end = comma < 0 ? packet.Length : comma;
            nsp = packet[i..end];
            i = comma < 0 ? packet.Length : comma + 1;
        }

        long? id = null;
        var start = i;
        while (i < packet.Length && char.IsAsciiDigit(packet[i]))
        {
            i++;
        }

        if (i > start)
        {
            id = long.Parse(packet.AsSpan(start, i - start), System.Globalization.CultureInfo.InvariantCulture);
        }

        return new TextPacket(type, attachments, nsp, id, i < packet.Length ? packet[i..] : null);
    }

    /// <summary>The payload as a detached JSON element.</summary>
    public JsonElement Payload => JsonDocument.Parse(Json ?? "null").RootElement.Clone();
}

/// <summary>
/// A raw Socket.IO client over one Engine.IO WebSocket (<c>/socket.io/?EIO=4&amp;transport=websocket</c>):
/// reads the open packet, sends CONNECT/EVENT/ACK text, answers PINGs, reads packets with a deadline.
/// </summary>
public sealed class SioClient : IAsyncDisposable
{
    private SioClient(RawWebSocket ws, string engineSid)
    {
        Ws = ws;
        EngineSid = engineSid;
    }

    public RawWebSocket Ws { get; }

    public string EngineSid { get; }

    /// <summary>The pid of the last CONNECT reply (connection state recovery), or null.</summary>
    public string? Pid { get; private set; }

    public static async Task<SioClient> OpenAsync(SioTestServer server, string query = "")
    {
        var ws = await RawWebSocket.ConnectAsync(server.WsUri(query));
        try
        {
            var open = await ws.ReceiveTextAsync(SioTestServer.Deadline);
            Assert.StartsWith("0{", open, StringComparison.Ordinal);
            using var json = JsonDocument.Parse(open[1..]);
            return new SioClient(ws, json.RootElement.GetProperty("sid").GetString()!);
        }
        catch
        {
            await ws.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends a text frame: an Engine.IO MESSAGE ("4") carrying a Socket.IO packet, e.g. <c>42["ev"]</c>.</summary>
    public Task SendAsync(string frame) => Ws.SendTextAsync(frame);

    public Task SendBinaryAsync(byte[] data) => Ws.SendBinaryAsync(data);

    /// <summary>The next message other than a PING (PINGs are answered).</summary>
    public async Task<WsMessage> NextMessageAsync()
    {
        while (true)
        {
            var message = await Ws.ReceiveAsync(SioTestServer.Deadline);
            if (message.Text == "2")
            {
                await Ws.SendTextAsync("3");
                continue;
            }

            return message;
        }
    }

    /// <summary>The next Engine.IO MESSAGE frame as text (starting with "4", then the Socket.IO packet).</summary>
    public async Task<string> NextAsync()
    {
        var message = await NextMessageAsync();
        Assert.True(message.IsText, $"expected a text packet, got {message}");
        Assert.True(message.Text!.StartsWith('4'), $"expected an Engine.IO message packet, got {message}");
        return message.Text;
    }

    /// <summary>The next binary attachment frame.</summary>
    public async Task<byte[]> NextBinaryAsync()
    {
        var message = await NextMessageAsync();
        Assert.False(message.IsText, $"expected a binary frame, got {message}");
        return message.Binary!;
    }

    /// <summary>Sends CONNECT for <paramref name="nsp"/> and returns the socket id of the reply.</summary>
    public async Task<string> ConnectAsync(string nsp = "/", string? auth = null)
    {
        var prefix = nsp == "/" ? "40" : $"40{nsp},";
        await SendAsync(prefix + auth);
        var reply = await NextAsync();
        Assert.True(reply.StartsWith(prefix + "{", StringComparison.Ordinal), $"expected CONNECT for {nsp}, got {reply}");
        using var json = JsonDocument.Parse(reply[prefix.Length..]);
        Pid = json.RootElement.TryGetProperty("pid", out var pid) ? pid.GetString() : null;
        return json.RootElement.GetProperty("sid").GetString()!;
    }

    /// <summary>Asserts the next packet is exactly <paramref name="expected"/>.</summary>
    public async Task ExpectAsync(string expected) => Assert.Equal(expected, await NextAsync());

    /// <summary>Waits for the server to close the connection.</summary>
    public Task WaitForCloseAsync() => Ws.WaitForCloseAsync(SioTestServer.Deadline);

    public ValueTask DisposeAsync() => Ws.DisposeAsync();
}
