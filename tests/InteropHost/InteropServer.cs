using EngineIO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SocketIO;

namespace InteropHost;

/// <summary>
/// The server the interop clients (socket.io-client for Node, python-socketio, SocketIOClient for
/// .NET) run their scenarios against: Socket.IO at /socket.io with connection state recovery on
/// (2 minutes) and CORS "*"; namespaces "/", "/custom" and "/secure" (auth.token must be "good").
/// </summary>
public sealed class InteropServer : IAsyncDisposable
{
    private static readonly TimeSpan QuestionTimeout = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;

    private InteropServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public Uri Url => new($"http://127.0.0.1:{Port}");

    public IServiceProvider Services => _app.Services;

    /// <summary>Starts the server on <paramref name="port"/> (0: a free one); <paramref name="messagePack"/> selects socket.io-msgpack-parser's format.</summary>
    public static async Task<InteropServer> StartAsync(int port = 0, bool messagePack = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        if (Environment.GetEnvironmentVariable("INTEROP_HOST_LOG") != "1")
        {
            builder.Logging.ClearProviders();
        }

        // as in the gateway: WebSocket-only handshakes are answered at the connection level (the
        // clients' "websocket" scenarios), polling and upgrades go through Kestrel's HTTP
        builder.Services.AddEngineIOWebSocketFastPath();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, port, l => l.UseEngineIOWebSocketFastPath()));
        var socketIO = builder.Services.AddSocketIO(o =>
        {
            o.Engine.Cors = new EngineCorsOptions { Origins = ["*"] };
            o.Engine.WebSocketMode = WebSocketModeFromEnvironment();
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions { MaxDisconnectionDuration = TimeSpan.FromMinutes(2) };
        });
        if (messagePack)
        {
            socketIO.AddMessagePackParser();
        }

        var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");

        var io = app.Services.GetRequiredService<SocketIOServer>();
        Configure(io.Of("/"));
        Configure(io.Of("/custom"));

        var secure = io.Of("/secure");
        secure.Use((socket, _) =>
        {
            var auth = socket.Handshake.Auth;
            var ok = auth.ValueKind == System.Text.Json.JsonValueKind.Object
                && auth.TryGetProperty("token", out var token)
                && token.ValueKind == System.Text.Json.JsonValueKind.String
                && token.GetString() == "good";
            return ok
                ? ValueTask.CompletedTask
                : throw new ConnectRejectedException("Authentication failed", new { code = "TOKEN_INVALID" });
        });
        Configure(secure);

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new InteropServer(app, new Uri(address).Port);
    }

    private static void Configure(SocketIONamespace ns)
    {
        ns.OnConnection(socket =>
        {
            socket.Emit("auth", socket.Handshake.Auth);

            // echo: same arguments back, binary included
            socket.On("message", ctx => socket.Emit("message-back", ctx.ToObjects()));
            socket.On("message-with-ack", ctx => ctx.Ack(ctx.ToObjects()));

            // join(room) -> ack true
            socket.On("join", ctx =>
            {
                socket.Join(Str(ctx, 0));
                if (ctx.HasAck)
                {
                    ctx.Ack(true);
                }
            });

            // broadcast(room, payload): everyone in the room but the sender
            socket.On("broadcast", ctx => socket.To(Str(ctx, 0)).Emit("broadcasted", ctx.ToObjects()[1]));

            // emit-to-room(room, event, payload): everyone in the room, sender included; ack true once sent
            socket.On("emit-to-room", ctx =>
            {
                socket.Namespace.To(Str(ctx, 0)).Emit(Str(ctx, 1), ctx.ToObjects()[2]);
                if (ctx.HasAck)
                {
                    ctx.Ack(true);
                }
            });

            // server-ask(payload): the server asks the client (with an ack) and reports what it acked
            socket.On("server-ask", async ctx =>
            {
                var payload = ctx.ToObjects()[0];
                var response = await socket.EmitWithAckAsync("question", [payload], QuestionTimeout);
                socket.Emit("answer", response.ToObjects());
            });

            socket.On("disconnect-me", _ => socket.Disconnect());

            // a network blip: the Engine.IO connection goes away without a Socket.IO DISCONNECT
            socket.On("drop-transport", _ => socket.Conn.Abort(DisconnectReason.TransportError));
        });
    }

    private static string Str(SocketEventContext ctx, int index) =>
        ctx.GetArg<string>(index) ?? throw new ArgumentException($"argument {index} of {ctx.EventName} must be a string");

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
}
