using EngineIO;
using SocketIO;

// The /builder gateway host. This first version serves the protocol document's namespace with
// project rooms; authentication, the event log and the producers' API come with the gateway issue.
var builder = WebApplication.CreateBuilder(args);
var origins = builder.Configuration.GetSection("Builder:Cors:Origins").Get<string[]>() ?? ["http://localhost:12000"];
if (origins.Length == 0 || origins.Any(string.IsNullOrWhiteSpace))
{
    throw new InvalidOperationException("Configuration key Builder:Cors:Origins must list at least one origin.");
}

builder.Services.AddSocketIO(o =>
{
    o.Engine.Cors = new EngineCorsOptions { Origins = origins, Credentials = true };
    o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
});

var app = builder.Build();
app.UseWebSockets();
app.MapSocketIO("/socket.io");
app.MapGet("/healthz", () => Results.Text("ok"));

var io = app.Services.GetRequiredService<SocketIOServer>();
io.Of("/builder").OnConnection(socket =>
{
    socket.On("join-project", ctx =>
    {
        if (!ctx.TryGetArg<JoinProject>(0, out var join) || string.IsNullOrWhiteSpace(join?.ProjectId))
        {
            var error = new { code = "INVALID_PAYLOAD", message = "join-project needs {projectId: string}", details = new { }, recoverable = true };
            socket.Emit("error", new { type = "error", timestamp = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), payload = error });
            ctx.Ack(new { ok = false, error });
            return;
        }

        var room = $"project:{join.ProjectId}";
        socket.Join(room);
        var members = socket.Namespace.Adapter.Sockets(new HashSet<string> { room }).Count;
        var joined = new { projectId = join.ProjectId, members };
        socket.Emit("project-joined", joined);
        ctx.Ack(new { ok = true, projectId = join.ProjectId, members });
    });
    socket.On("leave-project", ctx =>
    {
        if (ctx.TryGetArg<JoinProject>(0, out var leave) && !string.IsNullOrWhiteSpace(leave?.ProjectId))
        {
            socket.Leave($"project:{leave.ProjectId}");
        }

        ctx.Ack(new { ok = true });
    });
});

app.Run();

internal sealed record JoinProject(string? ProjectId);
