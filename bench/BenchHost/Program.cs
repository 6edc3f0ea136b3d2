// Our Socket.IO server as the end-to-end benchmark drives it (bench/run.sh):
//   namespace /builder (auth payload accepted), `join-project {projectId}` joins room
//   `project:<id>`, answers `project-joined` and acks {ok:true};
//   GET /bench/burst?project=P&count=K&rate=R&batch=B&burstId=I emits K agent:status:update
//   envelopes to room project:P (rate=0: B events per scheduling turn; rate>0: event i due at
//   t0 + i*1000/R ms) and answers JSON once the last one is handed to the transport;
//   GET /bench/stats answers the process's memory figures.
// Usage: dotnet run -c Release --project bench/BenchHost -- --port N [--msgpack] [--flush-deferrals D] [--idle-trim off] [--redis HOST:PORT]
//   (--msgpack: the MessagePack parser, socket.io-msgpack-parser 3.x format, instead of the JSON one;
//   D: EngineIOOptions.MaxFlushDeferrals, to measure what write coalescing buys; default 16;
//   --idle-trim off: no IdleMemoryTrimmer, to measure what it does; --redis: a cluster node, rooms
//   shared through our Redis adapter (src/SocketIO.Redis, key "socket.io"); bench/cluster.sh)
using System.Globalization;
using System.Text.Json;
using EngineIO;
using SocketIO;
using SocketIO.Redis;

var port = 3200;
int? flushDeferrals = null;
var idleTrim = true;
string? redis = null;
var msgpack = args.Contains("--msgpack");
for (var i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--port")
    {
        port = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    }
    else if (args[i] == "--flush-deferrals")
    {
        flushDeferrals = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    }
    else if (args[i] == "--idle-trim")
    {
        idleTrim = args[i + 1] != "off";
    }
    else if (args[i] == "--redis")
    {
        redis = args[i + 1];
    }
}

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
builder.Services.AddEngineIOWebSocketFastPath();
builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.UseEngineIOWebSocketFastPath()));
var socketIO = builder.Services.AddSocketIO(o =>
{
    if (flushDeferrals is { } d)
    {
        o.Engine.MaxFlushDeferrals = d;
    }
});
if (idleTrim)
{
    socketIO.AddIdleMemoryTrimmer();
}

if (msgpack)
{
    socketIO.AddMessagePackParser();
}

if (redis is not null)
{
    builder.Services.AddRedisAdapter(o => o.Configuration = redis);
}

var app = builder.Build();
app.UseWebSockets();
app.MapSocketIO("/socket.io");

var io = app.Services.GetRequiredService<SocketIOServer>();
var nsp = io.Of("/builder");
nsp.OnConnection(socket =>
{
    socket.On("join-project", ctx =>
    {
        string? projectId = null;
        if (ctx.Count > 0 && ctx[0].ValueKind == JsonValueKind.Object && ctx[0].TryGetProperty("projectId", out var p) && p.ValueKind == JsonValueKind.String)
        {
            projectId = p.GetString();
        }

        if (string.IsNullOrEmpty(projectId))
        {
            ctx.Ack(new JoinAck(false, null));
            return;
        }

        var room = "project:" + projectId;
        socket.Join(room);
        socket.Emit("project-joined", new ProjectJoined(projectId, 0, 0));
        ctx.Ack(new JoinAck(true, projectId));
    });
});

app.MapGet("/bench/stats", () => Results.Json(new Stats("ours", Mem.Rss(), GC.GetTotalMemory(false), GC.GetGCMemoryInfo().HeapSizeBytes, nsp.Sockets.Count, GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2), GC.GetTotalPauseDuration().TotalMilliseconds, GC.GetTotalAllocatedBytes()), StatsJson.Default.Stats));

app.MapGet("/bench/burst", async (HttpContext http) =>
{
    var q = http.Request.Query;
    var project = q["project"].FirstOrDefault() ?? "p0";
    var count = Math.Clamp(Num(q["count"].FirstOrDefault(), 200), 0, 10_000_000);
    var rate = Math.Max(0, Num(q["rate"].FirstOrDefault(), 0));
    var batch = Math.Max(1, Num(q["batch"].FirstOrDefault(), 1));
    var burstId = q["burstId"].FirstOrDefault() ?? "0";
    var room = nsp.To("project:" + project);
    var t0 = Mem.NowMs();
    var seq = 0;
    if (rate == 0)
    {
        while (seq < count)
        {
            for (var i = 0; i < batch && seq < count; i++, seq++)
            {
                room.Emit("agent:status:update", Envelope.Create(seq, burstId));
            }

            if (seq < count)
            {
                await Task.Yield();
            }
        }
    }
    else
    {
        while (seq < count)
        {
            var due = t0 + (seq * 1000.0 / rate);
            var wait = due - Mem.NowMs();
            if (wait > 0.5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(wait), http.RequestAborted);
            }

            var now = Mem.NowMs();
            while (seq < count && t0 + (seq * 1000.0 / rate) <= now + 0.5)
            {
                room.Emit("agent:status:update", Envelope.Create(seq, burstId));
                seq++;
            }
        }
    }

    return Results.Json(new BurstResult("ours", count, Mem.NowMs() - t0), StatsJson.Default.BurstResult);
});

app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"BenchHost listening on 127.0.0.1:{port} ({(msgpack ? "msgpack" : "json")} parser)"));
app.Run();

static int Num(string? s, int fallback) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;

internal sealed record JoinAck(bool Ok, string? ProjectId);

internal sealed record ProjectJoined(string ProjectId, int Members, long Seq);

internal sealed record AgentStatus(string AgentId, string AgentType, string Status, string CurrentTask, int Progress, string Message, int Seq, string BurstId, double SentAt);

internal sealed record Envelope(string Type, long Timestamp, AgentStatus Payload)
{
    public static Envelope Create(int seq, string burstId)
    {
        var sentAt = Mem.NowMs();
        return new Envelope("agent:status:update", (long)sentAt,
            new AgentStatus("agent-uuid", "ui", "working", "Generating UI layout for Dashboard page", 65, "Selected 5 components from library", seq, burstId, sentAt));
    }
}

internal sealed record Stats(string Server, long Rss, long GcTotalMemory, long GcHeapSize, int Clients, int Gen0Collections, int Gen1Collections, int Gen2Collections, double GcPauseMs, long AllocatedBytes);

internal sealed record BurstResult(string Server, int Count, double ElapsedMs);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(Stats))]
[System.Text.Json.Serialization.JsonSerializable(typeof(BurstResult))]
internal sealed partial class StatsJson : System.Text.Json.Serialization.JsonSerializerContext;

internal static class Mem
{
    /// <summary>Wall-clock epoch milliseconds, fractional.</summary>
    public static double NowMs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerMillisecond;

    /// <summary>Resident set size from /proc/self/status (VmRSS), else the working set.</summary>
    public static long Rss()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[1], CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return Environment.WorkingSet;
    }
}
