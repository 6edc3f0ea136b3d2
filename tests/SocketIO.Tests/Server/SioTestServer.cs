using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SocketIO.Tests.Server;

/// <summary>
/// The server-API tests run one at a time: each starts its own small server, and some of them
/// wait for timeouts (connect timeout, ack timeout) that a loaded machine would stretch.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ServerTestGroup
{
    public const string Name = "ServerApi";
}

/// <summary>
/// A Socket.IO server for one test: Kestrel on 127.0.0.1, an ephemeral port, the library mapped at
/// /socket.io/. Namespaces are configured by the test through <see cref="Io"/>; <see cref="Track"/>
/// makes the server-side <see cref="SocketIOSocket"/> of each connection available by its id.
/// </summary>
public sealed class SioTestServer : IAsyncDisposable
{
    /// <summary>How long any single await (a packet, a server-side callback, a close) may take.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    public const string Path = "/socket.io/";

    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, TaskCompletionSource<SocketIOSocket>> _sockets = new(StringComparer.Ordinal);
    private readonly HashSet<SocketIONamespace> _tracked = [];

    private SioTestServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
        Io = app.Services.GetRequiredService<SocketIOServer>();
        Http = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false })
        {
            Timeout = TimeSpan.FromSeconds(10),
        };
    }

    public SocketIOServer Io { get; }

    public int Port { get; }

    public HttpClient Http { get; }

    public static async Task<SioTestServer> StartAsync(Action<SocketIOOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        builder.Services.AddSocketIO(o => configure?.Invoke(o));
        var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var server = new SioTestServer(app, new Uri(address).Port);
        server.Track(server.Io.Sockets);
        return server;
    }

    public Uri WsUri(string query = "") => new($"ws://127.0.0.1:{Port}{Path}?EIO=4&transport=websocket{query}");

    public Uri HttpUri(string query) => new($"http://127.0.0.1:{Port}{Path}?EIO=4&transport=polling{query}");

    /// <summary>Registers the sockets connecting to <paramref name="nsp"/> (for a dynamic parent: to its children).</summary>
    public SocketIONamespace Track(SocketIONamespace nsp)
    {
        lock (_tracked)
        {
            if (!_tracked.Add(nsp))
            {
                return nsp;
            }
        }

        nsp.OnConnection(socket => Slot(socket.Conn.Id, socket.Id).TrySetResult(socket));
        return nsp;
    }

    /// <summary>
    /// The server-side socket with this id on this Engine.IO session, once its connection handlers
    /// ran (a recovered socket keeps its id, so the id alone is not enough).
    /// </summary>
    public Task<SocketIOSocket> SocketAsync(string engineSid, string id) => Slot(engineSid, id).Task.WaitAsync(Deadline);

    public Task<SocketIOSocket> SocketAsync(SioClient client, string id) => SocketAsync(client.EngineSid, id);

    /// <summary>Opens a WebSocket client, connects it to <paramref name="nsp"/> and returns it with its server-side socket.</summary>
    public async Task<(SioClient Client, SocketIOSocket Socket)> ConnectAsync(string nsp = "/", string? auth = null)
    {
        var client = await SioClient.OpenAsync(this);
        var sid = await client.ConnectAsync(nsp, auth);
        return (client, await SocketAsync(client, sid));
    }

    public async Task<(int Status, string Body)> GetAsync(string query)
    {
        using var response = await Http.GetAsync(HttpUri(query));
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task<(int Status, string Body)> PostAsync(string query, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("text/plain");
        using var response = await Http.PostAsync(HttpUri(query), content);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>A polling session connected to "/" with plain HTTP requests: its Engine.IO sid and the server-side socket.</summary>
    public async Task<(string EngineSid, SocketIOSocket Socket)> ConnectOverPollingAsync()
    {
        var (status, open) = await GetAsync(string.Empty);
        Assert.Equal(200, status);
        string engineSid;
        using (var json = JsonDocument.Parse(open[1..]))
        {
            engineSid = json.RootElement.GetProperty("sid").GetString()!;
        }

        Assert.Equal((200, "ok"), await PostAsync($"&sid={engineSid}", "40"));
        var (_, connect) = await GetAsync($"&sid={engineSid}");
        Assert.StartsWith("40{", connect, StringComparison.Ordinal);
        using var reply = JsonDocument.Parse(connect[2..]);
        return (engineSid, await SocketAsync(engineSid, reply.RootElement.GetProperty("sid").GetString()!));
    }

    private TaskCompletionSource<SocketIOSocket> Slot(string engineSid, string id) =>
        _sockets.GetOrAdd(engineSid + "@" + id, static _ => new TaskCompletionSource<SocketIOSocket>(TaskCreationOptions.RunContinuationsAsynchronously));

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// A TimeProvider whose wall clock can be moved forward (timers and timestamps stay real): enough
/// to expire a persisted session, which is judged by <see cref="TimeProvider.GetUtcNow"/>.
/// </summary>
public sealed class ShiftedTimeProvider : TimeProvider
{
    private long _shiftTicks;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _shiftTicks, by.Ticks);

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + TimeSpan.FromTicks(Interlocked.Read(ref _shiftTicks));
}

/// <summary>Records values produced on the server side so a test can await them with a deadline.</summary>
public sealed class Signal<T>
{
    private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsSet => _tcs.Task.IsCompleted;

    public void Set(T value) => _tcs.TrySetResult(value);

    public void Fail(Exception ex) => _tcs.TrySetException(ex);

    public Task<T> WaitAsync() => _tcs.Task.WaitAsync(SioTestServer.Deadline);
}
