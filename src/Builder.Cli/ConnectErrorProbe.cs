using System.Text;
using System.Text.Json;

namespace Builder.Cli;

/// <summary>
/// Reads the data of a namespace's <c>connect_error</c> (<c>{message, data: {code, message}}</c>)
/// over one Engine.IO long-polling session: the Socket.IO client reports only the message, and
/// "token refused" is only useful with the gateway's code (TOKEN_EXPIRED, TOKEN_INVALID, ...).
/// </summary>
internal static class ConnectErrorProbe
{
    private const int MaxPolls = 4;

    /// <summary>The code and message of the refusal, or (null, null) when the gateway gave none (or accepted this time).</summary>
    public static async Task<(string? Code, string? Message)> ReadAsync(GatewayAddress address, JsonElement? auth, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = timeout };
        var endpoint = $"{address.Path}/?EIO=4&transport=polling";
        try
        {
            var open = await http.GetStringAsync(address.Http(endpoint), cancellationToken);
            if (!open.StartsWith('0'))
            {
                return (null, null);
            }

            var sid = JsonDocument.Parse(open.AsMemory(1)).RootElement.GetProperty("sid").GetString()!;
            var session = address.Http($"{endpoint}&sid={Uri.EscapeDataString(sid)}");
            var nsp = address.Namespace == "/" ? string.Empty : address.Namespace + ",";
            var connect = "40" + nsp + (auth?.GetRawText() ?? string.Empty);
            using (var content = new StringContent(connect, Encoding.UTF8, "text/plain"))
            {
                using var posted = await http.PostAsync(session, content, cancellationToken);
            }

            try
            {
                for (var i = 0; i < MaxPolls; i++)
                {
                    var payload = await http.GetStringAsync(session, cancellationToken);
                    foreach (var packet in payload.Split('\u001e'))
                    {
                        var prefix = "44" + nsp;
                        if (packet.StartsWith(prefix, StringComparison.Ordinal))
                        {
                            var error = JsonDocument.Parse(packet.AsMemory(prefix.Length)).RootElement;
                            if (error.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object)
                            {
                                return (Text(data, "code"), Text(data, "message"));
                            }

                            return (null, Text(error, "message"));
                        }

                        if (packet.StartsWith("40" + nsp, StringComparison.Ordinal) || packet.StartsWith('1'))
                        {
                            return (null, null);
                        }
                    }
                }
            }
            finally
            {
                using var close = new StringContent("1", Encoding.UTF8, "text/plain");
                using var closed = await http.PostAsync(session, close, CancellationToken.None);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException or TaskCanceledException or KeyNotFoundException or InvalidOperationException)
        {
            // the probe only adds detail: without it the refusal is still reported
        }

        return (null, null);
    }

    private static string? Text(JsonElement element, string name) =>
        element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
