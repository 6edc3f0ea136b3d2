using System.Text;
using System.Text.Json;

namespace Builder.Tests.Infrastructure;

/// <summary>
/// A hand-written HTTP long-polling client, just enough to read a CONNECT_ERROR packet whole:
/// SocketIOClient 3.0.6 exposes only <c>err.message</c>, the document's clients read
/// <c>err.data.code</c> too.
/// </summary>
public static class RawPolling
{
    private const char Separator = '\u001e';

    /// <summary>Opens an Engine.IO session, sends CONNECT to /builder with <paramref name="auth"/>, returns the answer packet.</summary>
    public static async Task<string> ConnectAsync(TestGateway gateway, object? auth)
    {
        using var cts = new CancellationTokenSource(TestGateway.Wait);
        var open = await gateway.Http.GetStringAsync(new Uri("socket.io/?EIO=4&transport=polling", UriKind.Relative), cts.Token);
        Assert.StartsWith("0", open, StringComparison.Ordinal);
        var sid = JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString();
        var url = new Uri($"socket.io/?EIO=4&transport=polling&sid={Uri.EscapeDataString(sid!)}", UriKind.Relative);

        var connect = "40/builder," + (auth is null ? string.Empty : JsonSerializer.Serialize(auth));
        using (var content = new StringContent(connect, Encoding.UTF8, "text/plain"))
        {
            using var posted = await gateway.Http.PostAsync(url, content, cts.Token);
            posted.EnsureSuccessStatusCode();
        }

        // the answer may come in a later poll, and after other packets
        while (true)
        {
            var payload = await gateway.Http.GetStringAsync(url, cts.Token);
            foreach (var packet in payload.Split(Separator))
            {
                if (packet.StartsWith("40/builder,", StringComparison.Ordinal) || packet.StartsWith("44/builder,", StringComparison.Ordinal))
                {
                    return packet;
                }
            }
        }
    }

    /// <summary>The <c>{message, data}</c> of a CONNECT_ERROR packet; fails on anything else.</summary>
    public static async Task<JsonElement> ConnectErrorAsync(TestGateway gateway, object? auth)
    {
        var packet = await ConnectAsync(gateway, auth);
        Assert.True(packet.StartsWith("44/builder,", StringComparison.Ordinal), "expected CONNECT_ERROR, got " + packet);
        return JsonDocument.Parse(packet["44/builder,".Length..]).RootElement.Clone();
    }
}
