using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using ConformanceHost;

namespace SocketIO.Tests.Protocol;

/// <summary>
/// All protocol conformance tests share one <see cref="ConformanceServer"/> and run one at a time:
/// several suite tests are timing sensitive (pingInterval 300 ms, pingTimeout 200 ms), so they must
/// not compete for the CPU with each other.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProtocolTestGroup : ICollectionFixture<ProtocolServerFixture>
{
    public const string Name = "Protocol";
}

/// <summary>An HTTP exchange: status code, body text and headers.</summary>
public sealed record HttpResult(int Status, string Body, HttpResponseHeaders Headers, HttpContentHeaders ContentHeaders)
{
    public override string ToString() => $"HTTP {Status}: {Body}";
}

/// <summary>Starts the conformance host and offers raw HTTP/WebSocket helpers against it.</summary>
public sealed class ProtocolServerFixture : IAsyncLifetime, IDisposable
{
    /// <summary>How long any single await on the server (message, close, response) may take.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    public const int PingInterval = 300;
    public const int PingTimeout = 200;
    public const string RecordSeparator = "\u001e";

    private ConformanceServer? _server;

    public ProtocolServerFixture()
    {
        Http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
        })
        {
            // generous: a single long-polling GET legitimately blocks for up to pingInterval
            Timeout = TimeSpan.FromSeconds(10),
        };
    }

    public HttpClient Http { get; }

    public ConformanceServer Server => _server ?? throw new InvalidOperationException("server not started");

    public int Port => Server.Port;

    public async Task InitializeAsync()
    {
        _server = await ConformanceServer.StartAsync();

        // two rounds: a cold first round may itself be too slow for the 500 ms heartbeat window
        // (its failure is the very cost it pays), the second runs on compiled code
        for (var round = 0; round < 2; round++)
        {
            foreach (var path in new[] { "/engine.io/", "/socket.io/" })
            {
                try
                {
                    await WarmUpAsync(path);
                }
                catch (Exception ex) when (ex is HttpRequestException or System.Net.WebSockets.WebSocketException or TimeoutException or JsonException)
                {
                    // best effort: only the compilation matters here
                }
            }
        }
    }

    /// <summary>
    /// Runs every code path once (polling, upgrade, WebSocket, Socket.IO connect) before the tests:
    /// the first run of each pays for JIT compilation in the server and in this client, hundreds
    /// of milliseconds that would otherwise land inside the first timing-sensitive test.
    /// </summary>
    private async Task WarmUpAsync(string path)
    {
        var baseUrl = $"http://127.0.0.1:{Port}{path}?EIO=4&transport=polling";
        var open = await Http.GetStringAsync(new Uri(baseUrl));
        var sid = JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString();
        var url = new Uri($"{baseUrl}&sid={sid}");
        var message = path == "/socket.io/" ? "40" : "4warm";
        using (var content = new StringContent(message, Encoding.UTF8, "text/plain"))
        {
            using var posted = await Http.PostAsync(url, content);
        }

        _ = await Http.GetStringAsync(url);
        using var upgrade = new System.Net.WebSockets.ClientWebSocket();
        await upgrade.ConnectAsync(new Uri($"ws://127.0.0.1:{Port}{path}?EIO=4&transport=websocket&sid={sid}"), CancellationToken.None);
        await upgrade.SendAsync("2probe"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[4096];
        await upgrade.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(Deadline);
        await upgrade.SendAsync("5"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        await upgrade.SendAsync("1"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);

        using var direct = new System.Net.WebSockets.ClientWebSocket();
        await direct.ConnectAsync(new Uri($"ws://127.0.0.1:{Port}{path}?EIO=4&transport=websocket"), CancellationToken.None);
        await direct.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(Deadline);
        await direct.SendAsync(Encoding.UTF8.GetBytes(message), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        await direct.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None).WaitAsync(Deadline);
        await direct.SendAsync("1"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }

        Http.Dispose();
    }

    public void Dispose() => Http.Dispose();

    /// <summary>
    /// The suites' <c>sleep(delay)</c>: lets at least <paramref name="milliseconds"/> of server time pass,
    /// measured with a precise clock (like setTimeout, never early: Task.Delay alone can return a few
    /// milliseconds early because the timer queue runs on a coarse clock).
    /// </summary>
    public static async Task SleepAsync(int milliseconds)
    {
        var stopwatch = Stopwatch.StartNew();
        await Task.Delay(milliseconds);
        while (stopwatch.Elapsed.TotalMilliseconds < milliseconds)
        {
            await Task.Delay(1);
        }
    }

    public Uri HttpUri(string pathAndQuery) => new($"http://127.0.0.1:{Port}{pathAndQuery}");

    public Uri WsUri(string pathAndQuery) => new($"ws://127.0.0.1:{Port}{pathAndQuery}");

    public Task<HttpResult> GetAsync(string pathAndQuery, CancellationToken cancellationToken = default) =>
        SendAsync(new HttpRequestMessage(HttpMethod.Get, HttpUri(pathAndQuery)), cancellationToken);

    /// <summary>POST with a text body, or with no body at all when <paramref name="body"/> is null.</summary>
    public Task<HttpResult> PostAsync(string pathAndQuery, string? body, CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, HttpUri(pathAndQuery));
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "text/plain");
        }

        return SendAsync(request, cancellationToken);
    }

    public async Task<HttpResult> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        using (request)
        {
            using var response = await Http.SendAsync(request, cancellationToken);
            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            return new HttpResult((int)response.StatusCode, body, response.Headers, response.Content.Headers);
        }
    }

    /// <summary>The suites' <c>initLongPollingSession()</c>: opens a polling session and returns its sid.</summary>
    public async Task<string> InitLongPollingSessionAsync(string path)
    {
        var response = await GetAsync($"{path}?EIO=4&transport=polling");
        Assert.Equal(200, response.Status);
        using var json = JsonDocument.Parse(response.Body[1..]);
        return json.RootElement.GetProperty("sid").GetString()!;
    }

    /// <summary>
    /// Long-polls until <paramref name="count"/> packets other than PING arrived, answering every PING
    /// with a PONG so the session stays alive. Only for the extra tests, not the ported suites.
    /// </summary>
    public async Task<List<string>> PollPacketsAsync(string path, string sid, int count)
    {
        var packets = new List<string>();
        using var cts = new CancellationTokenSource(Deadline);
        while (packets.Count < count)
        {
            var response = await GetAsync($"{path}?EIO=4&transport=polling&sid={sid}", cts.Token);
            Assert.True(response.Status == 200, $"poll failed: {response}");
            foreach (var packet in response.Body.Split(RecordSeparator))
            {
                if (packet == "2")
                {
                    var pong = await PostAsync($"{path}?EIO=4&transport=polling&sid={sid}", "3", cts.Token);
                    Assert.Equal(200, pong.Status);
                }
                else
                {
                    packets.Add(packet);
                }
            }
        }

        return packets;
    }

    /// <summary>Asserts the suites' checks on an Engine.IO OPEN packet ("0{...}").</summary>
    public static void AssertOpenPacket(string content, string[] expectedUpgrades)
    {
        Assert.StartsWith("0", content, StringComparison.Ordinal);
        using var json = JsonDocument.Parse(content[1..]);
        var value = json.RootElement;
        AssertKeys(value, "sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload");
        Assert.Equal(JsonValueKind.String, value.GetProperty("sid").ValueKind);
        Assert.Equal(expectedUpgrades, value.GetProperty("upgrades").EnumerateArray().Select(e => e.GetString()).ToArray());
        Assert.Equal(JsonValueKind.Number, value.GetProperty("pingInterval").ValueKind);
        Assert.Equal(PingInterval, value.GetProperty("pingInterval").GetInt32());
        Assert.Equal(JsonValueKind.Number, value.GetProperty("pingTimeout").ValueKind);
        Assert.Equal(PingTimeout, value.GetProperty("pingTimeout").GetInt32());
        Assert.Equal(JsonValueKind.Number, value.GetProperty("maxPayload").ValueKind);
        Assert.Equal(1000000, value.GetProperty("maxPayload").GetInt32());
    }

    /// <summary>Asserts a Socket.IO CONNECT payload is exactly <c>{"sid":"..."}</c> and returns the sid.</summary>
    public static string AssertConnectPayload(string json)
    {
        using var document = JsonDocument.Parse(json);
        AssertKeys(document.RootElement, "sid");
        var sid = document.RootElement.GetProperty("sid");
        Assert.Equal(JsonValueKind.String, sid.ValueKind);
        return sid.GetString()!;
    }

    /// <summary>chai's <c>to.have.all.keys(...)</c>: the object has exactly these keys.</summary>
    public static void AssertKeys(JsonElement value, params string[] keys)
    {
        Assert.Equal(JsonValueKind.Object, value.ValueKind);
        var actual = value.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(keys.Order(StringComparer.Ordinal).ToArray(), actual);
    }
}
