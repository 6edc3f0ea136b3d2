using System.Net;
using System.Text;
using System.Text.Json;

namespace Builder.Tests.Infrastructure;

/// <summary>
/// One hand-driven Engine.IO long-polling session: sends packets as written, returns the packets
/// received (pings are answered), and tells when the server closed the session. For what the
/// NuGet client cannot do: connection state recovery, the main namespace, CONNECT without a wait.
/// </summary>
public sealed class RawSession
{
    private const char Separator = '\u001e';
    private readonly HttpClient _http;
    private readonly Uri _url;
    private readonly Queue<string> _received = new();

    private RawSession(HttpClient http, string sid)
    {
        _http = http;
        Sid = sid;
        _url = new Uri($"socket.io/?EIO=4&transport=polling&sid={Uri.EscapeDataString(sid)}", UriKind.Relative);
    }

    public string Sid { get; }

    /// <summary>Every packet received so far, in order (pings excepted).</summary>
    public List<string> Seen { get; } = [];

    public static async Task<RawSession> OpenAsync(TestGateway gateway)
    {
        using var cts = new CancellationTokenSource(TestGateway.Wait);
        var open = await gateway.Http.GetStringAsync(new Uri("socket.io/?EIO=4&transport=polling", UriKind.Relative), cts.Token);
        Assert.StartsWith("0", open, StringComparison.Ordinal);
        return new RawSession(gateway.Http, JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString()!);
    }

    public async Task SendAsync(string packet)
    {
        using var cts = new CancellationTokenSource(TestGateway.Wait);
        using var content = new StringContent(packet, Encoding.UTF8, "text/plain");
        using var posted = await _http.PostAsync(_url, content, cts.Token);
        posted.EnsureSuccessStatusCode();
    }

    /// <summary>The next received packet <paramref name="match"/> accepts (earlier ones are skipped, and kept in <see cref="Seen"/>).</summary>
    public async Task<string> NextAsync(Func<string, bool> match, TimeSpan? wait = null)
    {
        using var cts = new CancellationTokenSource(wait ?? TestGateway.Wait);
        while (true)
        {
            while (_received.TryDequeue(out var packet))
            {
                if (match(packet))
                {
                    return packet;
                }
            }

            try
            {
                await PollAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException("no matching packet; seen: " + string.Join(" | ", Seen));
            }
        }
    }

    /// <summary>The next packet starting with <paramref name="prefix"/>.</summary>
    public Task<string> NextAsync(string prefix, TimeSpan? wait = null) => NextAsync(p => p.StartsWith(prefix, StringComparison.Ordinal), wait);

    /// <summary>Polls until the server closes the session (a close packet, or the sid is unknown); false at the deadline.</summary>
    public async Task<bool> ClosedAsync(TimeSpan wait)
    {
        using var cts = new CancellationTokenSource(wait);
        try
        {
            while (true)
            {
                if (!await PollAsync(cts.Token))
                {
                    return true;
                }

                if (_received.Contains("1"))
                {
                    return true;
                }
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>One GET; false when the session is unknown (closed).</summary>
    private async Task<bool> PollAsync(CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(_url, cancellationToken);
        var payload = await response.Content.ReadAsStringAsync(cancellationToken);
        if (response.StatusCode == HttpStatusCode.BadRequest)
        {
            return false;
        }

        response.EnsureSuccessStatusCode();
        foreach (var packet in payload.Split(Separator))
        {
            if (packet == "2")
            {
                await SendAsync("3");
                continue;
            }

            Seen.Add(packet);
            _received.Enqueue(packet);
        }

        return true;
    }
}
