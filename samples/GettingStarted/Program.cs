// The getting-started application (docs/getting-started.md): every C# block of that page is
// copied from this file, and tests/Packaging.Tests fails when they differ.
using SocketIO;
using SocketIO.Redis;

var builder = WebApplication.CreateBuilder(args);

builder.Services.AddSocketIO(options =>
{
    // clients that lose their connection for up to two minutes get back their id, rooms and the
    // events they missed
    options.ConnectionStateRecovery = new ConnectionStateRecoveryOptions
    {
        MaxDisconnectionDuration = TimeSpan.FromMinutes(2),
    };
});

// several servers behind a load balancer share rooms and broadcasts through Redis
if (builder.Configuration["Redis"] is { Length: > 0 } redis)
{
    builder.Services.AddRedisAdapter(o => o.Configuration = redis);
}

var app = builder.Build();
app.UseWebSockets();
app.MapSocketIO("/socket.io");

var io = app.Services.GetRequiredService<SocketIOServer>();

io.Sockets.Use((socket, cancellationToken) =>
{
    if (socket.Handshake.AuthString("token") != "let-me-in")
    {
        throw new ConnectRejectedException("not authorized", new { hint = "send auth: { token }" });
    }

    socket.Data["user"] = socket.Handshake.AuthString("user") ?? "anonymous";
    return ValueTask.CompletedTask;
});

io.Sockets.OnConnection(socket =>
{
    socket.Emit("hello", "world");

    socket.On("howdy", e => Console.WriteLine($"howdy: {e.GetArg<string>(0)}"));

    socket.On("add", e => e.Ack(e.GetArg<int>(0) + e.GetArg<int>(1)));

    socket.On("join", e =>
    {
        var room = e.GetArg<string>(0)!;
        socket.Join(room);
        io.To(room).Emit("joined", room, socket.Data["user"]);
    });

    socket.On("upload", e =>
    {
        byte[] file = e.GetBinary(0);
        Array.Reverse(file);
        e.Ack(file.Length, file);
    });

    socket.On("ask", async e =>
    {
        var answer = await socket.EmitWithAckAsync("question", ["ready?"], TimeSpan.FromSeconds(5));
        e.Ack(answer.GetArg<string>(0));
    });

    socket.OnDisconnect(reason => Console.WriteLine($"{socket.Id} left: {reason}"));

    if (socket.Recovered)
    {
        socket.Emit("recovered", socket.Rooms.Count);
    }
});

app.Run();
