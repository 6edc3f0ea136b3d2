using EngineIO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SocketIO;

namespace ConformanceHost;

/// <summary>
/// The server the Engine.IO v4 and Socket.IO v5 protocol test suites expect: pingInterval 300,
/// pingTimeout 200, maxPayload 1000000, connectTimeout 1000, CORS "*"; namespaces "/" and
/// "/custom" only; a raw Engine.IO echo server at /engine.io/.
/// </summary>
public sealed class ConformanceServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ConformanceServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<ConformanceServer> StartAsync(int port = 0, Action<SocketIOOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // as in the gateway: new WebSocket sessions are upgraded at the connection level
        builder.Services.AddEngineIOWebSocketFastPath();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port, l => l.UseEngineIOWebSocketFastPath()));
        builder.Services.AddSocketIO(o =>
        {
            o.Engine.PingInterval = TimeSpan.FromMilliseconds(300);
            o.Engine.PingTimeout = TimeSpan.FromMilliseconds(200);
            o.Engine.MaxPayload = 1_000_000;
            o.Engine.WebSocketMode = WebSocketModeFromEnvironment();
            o.Engine.Cors = new EngineCorsOptions { Origins = ["*"] };
            // the suite's heartbeat scenarios run three ping rounds (about 900 ms) on a session that
            // never connects a namespace: 1 s left 100 ms to spare, which a loaded machine ate (the
            // session was closed by the connect timeout before the third ping); no suite test relies on it
            o.ConnectTimeout = TimeSpan.FromMilliseconds(3000);
            configure?.Invoke(o);
        });
        var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");
        app.MapEngineIO("/engine.io", new EchoEngineHandler(), o =>
        {
            o.PingInterval = TimeSpan.FromMilliseconds(300);
            o.PingTimeout = TimeSpan.FromMilliseconds(200);
            o.MaxPayload = 1_000_000;
            o.Cors = new EngineCorsOptions { Origins = ["*"] };
            o.WebSocketMode = WebSocketModeFromEnvironment();
        });

        var io = app.Services.GetRequiredService<SocketIOServer>();
        foreach (var name in new[] { "/", "/custom" })
        {
            io.Of(name).OnConnection(socket =>
            {
                socket.Emit("auth", socket.Handshake.Auth);
                socket.On("message", ctx => socket.Emit("message-back", ctx.ToObjects()));
                socket.On("message-with-ack", ctx => ctx.Ack(ctx.ToObjects()));
            });
        }

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new ConformanceServer(app, new Uri(address).Port);
    }

    /// <summary>
    /// The WebSocket mode the suites run against: ENGINEIO_WEBSOCKET_MODE (ConnectionPipe, Framed
    /// or Runtime; test.sh runs the protocol and interop suites once per mode), ConnectionPipe when unset.
    /// </summary>
    public static EngineWebSocketMode WebSocketModeFromEnvironment() =>
        Environment.GetEnvironmentVariable("ENGINEIO_WEBSOCKET_MODE") is { Length: > 0 } mode
            ? Enum.Parse<EngineWebSocketMode>(mode, ignoreCase: true)
            : EngineWebSocketMode.ConnectionPipe;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Engine.IO echo: every message comes back as it was sent, text or binary.</summary>
    private sealed class EchoEngineHandler : IEngineHandler
    {
        public void OnOpen(EngineSession session)
        {
        }

        public void OnMessage(EngineSession session, EngineMessage message) => session.Send(message);

        public void OnClose(EngineSession session, string reason)
        {
        }
    }
}
