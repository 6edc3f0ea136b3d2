using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.Channels;
using SocketIOClient;
using SocketIOClient.Transport;
using Client = SocketIOClient.SocketIO;

namespace Interop.Tests;

/// <summary>
/// The .NET client SocketIOClient 3.0.6 against the .NET server, in-process. Scenarios the client
/// supports: connect with auth, emit/ack both ways, binary, room broadcast, custom namespace,
/// connect_error, server disconnect. (It exposes only err.message of a connect_error, and it has no
/// connection state recovery.)
/// </summary>
public sealed class DotNetClientTests(InteropServerFixture fixture) : IClassFixture<InteropServerFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private readonly List<Client> _clients = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            try
            {
                if (client.Connected)
                {
                    await client.DisconnectAsync().WaitAsync(Wait);
                }
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or ObjectDisposedException)
            {
                // best effort
            }

            client.Dispose();
        }
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Connect_with_auth(TransportProtocol transport)
    {
        var client = Create("/", transport, new { token = "abc", nested = new { n = 1, list = new object?[] { 1, "two", null, true } } });
        var auth = Events(client, "auth");
        await ConnectAsync(client);
        Assert.False(string.IsNullOrEmpty(client.Id));

        var args = Payload(await auth.NextAsync(), 1);
        var element = args.GetValue(0);
        Assert.Equal("abc", element.GetProperty("token").GetString());
        Assert.Equal(1, element.GetProperty("nested").GetProperty("n").GetInt32());
        Assert.Equal("""[1,"two",null,true]""", element.GetProperty("nested").GetProperty("list").GetRawText());

        var bare = Create("/", transport, auth: null);
        var bareAuth = Events(bare, "auth");
        await ConnectAsync(bare);
        var bareArgs = Payload(await bareAuth.NextAsync(), 1);
        Assert.Equal(JsonValueKind.Object, bareArgs.GetValue(0).ValueKind);
        Assert.Empty(bareArgs.GetValue(0).EnumerateObject());
        Assert.NotEqual(client.Id, bare.Id);
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Emit_and_ack_both_ways(TransportProtocol transport)
    {
        var client = Create("/", transport);
        var back = Events(client, "message-back");
        var answers = Events(client, "answer");
        client.On("question", response =>
        {
            _ = response.CallbackAsync(new { got = response.GetValue(0), from = "dotnet" });
        });
        await ConnectAsync(client);

        await client.EmitAsync("message", 1, "two", new { three = 3 });
        var echoed = Payload(await back.NextAsync(), 3);
        Assert.Equal(1, echoed.GetValue<int>(0));
        Assert.Equal("two", echoed.GetValue<string>(1));
        Assert.Equal(3, echoed.GetValue(2).GetProperty("three").GetInt32());

        var acked = await EmitWithAckAsync(client, "message-with-ack", 1, "two", new { three = 3 });
        Assert.Equal(3, acked.Count);
        Assert.Equal(1, acked.GetValue<int>(0));
        Assert.Equal("two", acked.GetValue<string>(1));
        Assert.Equal(3, acked.GetValue(2).GetProperty("three").GetInt32());

        await client.EmitAsync("server-ask", new { q = 42 });
        var answer = Payload(await answers.NextAsync(), 1).GetValue(0);
        Assert.Equal(42, answer.GetProperty("got").GetProperty("q").GetInt32());
        Assert.Equal("dotnet", answer.GetProperty("from").GetString());
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Binary_both_ways(TransportProtocol transport)
    {
        var client = Create("/", transport);
        var back = Events(client, "message-back");
        var answers = Events(client, "answer");
        client.On("question", response =>
        {
            var question = response.GetValue<byte[]>(0);
            _ = response.CallbackAsync(new Holder { Name = "echo", Data = [.. question, 9] });
        });
        await ConnectAsync(client);

        byte[] blob = [0, 1, 2, 127, 128, 254, 255];
        var holder = new Holder { Name = "blob", Data = "hello"u8.ToArray() };
        await client.EmitAsync("message", blob, holder, 7);
        var echoed = Payload(await back.NextAsync(), 3);
        Assert.Equal(blob, echoed.GetValue<byte[]>(0));
        var echoedHolder = echoed.GetValue<Holder>(1);
        Assert.Equal("blob", echoedHolder.Name);
        Assert.Equal(holder.Data, echoedHolder.Data);
        Assert.Equal(7, echoed.GetValue<int>(2));

        var acked = await EmitWithAckAsync(client, "message-with-ack", blob, holder);
        Assert.Equal(2, acked.Count);
        Assert.Equal(blob, acked.GetValue<byte[]>(0));
        Assert.Equal(holder.Data, acked.GetValue<Holder>(1).Data);

        await client.EmitAsync("server-ask", new byte[] { 4, 5, 6 });
        var answer = Payload(await answers.NextAsync(), 1).GetValue<Holder>(0);
        Assert.Equal("echo", answer.Name);
        Assert.Equal(new byte[] { 4, 5, 6, 9 }, answer.Data);
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Room_broadcast(TransportProtocol transport)
    {
        var room = "room-" + Guid.NewGuid().ToString("N");
        var a = Create("/", transport);
        var b = Create("/", transport);
        var c = Create("/", transport);
        var aGot = Events(a, "broadcasted");
        var bGot = Events(b, "broadcasted");
        var cGot = Events(c, "broadcasted");
        await Task.WhenAll(ConnectAsync(a), ConnectAsync(b), ConnectAsync(c));

        Assert.True((await EmitWithAckAsync(a, "join", room)).GetValue<bool>(0));
        Assert.True((await EmitWithAckAsync(b, "join", room)).GetValue<bool>(0));

        await a.EmitAsync("broadcast", room, new { hello = room });
        var received = Payload(await bGot.NextAsync(), 1);
        Assert.Equal(room, received.GetValue(0).GetProperty("hello").GetString());

        // the sender (socket.to(room) excludes it) and a socket outside the room get nothing
        await BarrierAsync(a);
        await BarrierAsync(c);
        Assert.Equal(0, aGot.Pending);
        Assert.Equal(0, cGot.Pending);

        await b.EmitAsync("broadcast", room, new Holder { Name = "bin", Data = [1, 2, 3] });
        var binary = Payload(await aGot.NextAsync(), 1).GetValue<Holder>(0);
        Assert.Equal(new byte[] { 1, 2, 3 }, binary.Data);
        await BarrierAsync(b);
        await BarrierAsync(c);
        Assert.Equal(0, bGot.Pending);
        Assert.Equal(0, cGot.Pending);
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Custom_namespace(TransportProtocol transport)
    {
        var client = Create("/custom", transport, new { ns = "custom" });
        var auth = Events(client, "auth");
        var back = Events(client, "message-back");
        await ConnectAsync(client);
        Assert.Equal("custom", Payload(await auth.NextAsync(), 1).GetValue(0).GetProperty("ns").GetString());

        await client.EmitAsync("message", "in-custom", new { n = 1 });
        var echoed = Payload(await back.NextAsync(), 2);
        Assert.Equal("in-custom", echoed.GetValue<string>(0));
        Assert.Equal(1, echoed.GetValue(1).GetProperty("n").GetInt32());

        var acked = await EmitWithAckAsync(client, "message-with-ack", new { ns = "custom" });
        Assert.Equal("custom", acked.GetValue(0).GetProperty("ns").GetString());
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Connect_error_from_middleware(TransportProtocol transport)
    {
        var rejected = Create("/secure", transport, new { token = "bad" });
        var error = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var connected = false;
        rejected.OnError += (_, message) => error.TrySetResult(message);
        rejected.OnConnected += (_, _) => connected = true;
        await rejected.ConnectAsync().WaitAsync(Wait);
        Assert.Equal("Authentication failed", await error.Task.WaitAsync(Wait));
        Assert.False(connected);
        Assert.False(rejected.Connected);

        var good = Create("/secure", transport, new { token = "good" });
        var auth = Events(good, "auth");
        await ConnectAsync(good);
        Assert.Equal("good", Payload(await auth.NextAsync(), 1).GetValue(0).GetProperty("token").GetString());
        await BarrierAsync(good);
    }

    [Theory]
    [InlineData(TransportProtocol.Polling)]
    [InlineData(TransportProtocol.WebSocket)]
    public async Task Server_disconnect(TransportProtocol transport)
    {
        var client = Create("/", transport);
        var reason = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.OnDisconnected += (_, r) => reason.TrySetResult(r);
        await ConnectAsync(client);
        await client.EmitAsync("disconnect-me");
        Assert.Equal(DisconnectReason.IOServerDisconnect, await reason.Task.WaitAsync(Wait));
        Assert.False(client.Connected);
    }

    [Fact]
    public async Task Cors_allows_any_origin()
    {
        using var http = new HttpClient { Timeout = Wait };
        const string origin = "http://example.test:8080";

        using var preflight = new HttpRequestMessage(HttpMethod.Options, new Uri(fixture.Url, "/socket.io/?EIO=4&transport=polling"));
        preflight.Headers.Add("Origin", origin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        using var preflightResponse = await http.SendAsync(preflight);
        Assert.True(preflightResponse.IsSuccessStatusCode, $"preflight: {(int)preflightResponse.StatusCode}");
        AssertAllowed(preflightResponse);

        using var handshake = new HttpRequestMessage(HttpMethod.Get, new Uri(fixture.Url, "/socket.io/?EIO=4&transport=polling"));
        handshake.Headers.Add("Origin", origin);
        using var response = await http.SendAsync(handshake);
        Assert.True(response.IsSuccessStatusCode, $"handshake: {(int)response.StatusCode}");
        AssertAllowed(response);
        Assert.StartsWith("0{", await response.Content.ReadAsStringAsync());

        static void AssertAllowed(HttpResponseMessage message)
        {
            Assert.True(message.Headers.TryGetValues("Access-Control-Allow-Origin", out var values), "no Access-Control-Allow-Origin header");
            Assert.Contains(values.Single(), new[] { "*", origin });
        }
    }

    private Client Create(string nsp, TransportProtocol transport, object? auth = null)
    {
        var options = new SocketIOOptions
        {
            EIO = 4,
            Transport = transport,
            AutoUpgrade = transport == TransportProtocol.Polling,
            Reconnection = false,
            ConnectionTimeout = Wait,
        };
        if (auth is not null)
        {
            options.Auth = auth;
        }

        var client = new Client(new Uri(fixture.Url, nsp), options);
        _clients.Add(client);
        return client;
    }

    private static async Task ConnectAsync(Client client)
    {
        var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnConnected(object? sender, EventArgs e) => connected.TrySetResult();
        void OnError(object? sender, string message) => connected.TrySetException(new InvalidOperationException($"connect error: {message}"));
        client.OnConnected += OnConnected;
        client.OnError += OnError;
        try
        {
            await client.ConnectAsync().WaitAsync(Wait);
            await connected.Task.WaitAsync(Wait);
        }
        finally
        {
            client.OnConnected -= OnConnected;
            client.OnError -= OnError;
        }
    }

    private static async Task<SocketIOResponse> EmitWithAckAsync(Client client, string eventName, params object[] args)
    {
        var ack = new TaskCompletionSource<SocketIOResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync(eventName, response => ack.TrySetResult(response), args).WaitAsync(Wait);
        return await ack.Task.WaitAsync(Wait);
    }

    /// <summary>A round trip through the server: everything it queued earlier for this client has arrived.</summary>
    private static async Task BarrierAsync(Client client)
    {
        var response = await EmitWithAckAsync(client, "message-with-ack", new { barrier = true });
        Assert.True(response.GetValue(0).GetProperty("barrier").GetBoolean());
    }

    /// <summary>
    /// The server runs with connection state recovery on, so (as the reference server does) each
    /// event emitted without an ack request carries its offset as an extra trailing string.
    /// </summary>
    private static SocketIOResponse Payload(SocketIOResponse response, int expected)
    {
        var ok = response.Count == expected
            || (response.Count == expected + 1 && response.GetValue(expected).ValueKind == JsonValueKind.String);
        Assert.True(ok, $"expected {expected} argument(s) (plus an optional offset), got {response}");
        return response;
    }

    private static EventQueue Events(Client client, string eventName)
    {
        var queue = new EventQueue(eventName);
        client.On(eventName, queue.Add);
        return queue;
    }

    public sealed class Holder
    {
        [JsonPropertyName("name")]
        public string? Name { get; set; }

        [JsonPropertyName("data")]
        public byte[]? Data { get; set; }
    }

    private sealed class EventQueue(string eventName)
    {
        private readonly Channel<SocketIOResponse> _channel = Channel.CreateUnbounded<SocketIOResponse>();

        public int Pending => _channel.Reader.Count;

        public void Add(SocketIOResponse response) => _channel.Writer.TryWrite(response);

        public async Task<SocketIOResponse> NextAsync()
        {
            try
            {
                return await _channel.Reader.ReadAsync().AsTask().WaitAsync(Wait);
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"no \"{eventName}\" event within {Wait.TotalSeconds:0} s");
            }
        }
    }
}
