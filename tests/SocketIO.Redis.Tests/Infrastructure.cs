using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace SocketIO.Redis.Tests;

public static class Wait
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    /// <summary>Polls <paramref name="condition"/> until true or the deadline (bounded in count and time).</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, string what, TimeSpan? deadline = null)
    {
        var end = DateTime.UtcNow + (deadline ?? Deadline);
        for (var i = 0; i < 10_000; i++)
        {
            if (await condition())
            {
                return;
            }

            if (DateTime.UtcNow > end)
            {
                break;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException("timed out waiting for " + what);
    }

    public static Task UntilAsync(Func<bool> condition, string what, TimeSpan? deadline = null) =>
        UntilAsync(() => Task.FromResult(condition()), what, deadline);

    public static string RepoRoot { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Builder.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root (with Builder.slnx) not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A real redis-server on a free loopback port, for one test class.</summary>
public sealed class RedisServer : IAsyncLifetime
{
    private Process? _process;

    public int Port { get; private set; }

    public string Configuration => $"127.0.0.1:{Port}";

    public bool Running => _process is { HasExited: false };

    public async Task InitializeAsync()
    {
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            Port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
        }

        await StartAsync();
    }

    /// <summary>Starts (or restarts, after <see cref="StopAsync"/>) redis-server on <see cref="Port"/> and waits for PING.</summary>
    public async Task StartAsync()
    {
        var binary = new[] { "/usr/bin/redis-server", "/usr/local/bin/redis-server" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("redis-server is not installed; ./test.sh installs the Debian package redis-server.");
        _process = Process.Start(new ProcessStartInfo(binary)
        {
            ArgumentList = { "--port", Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", string.Empty, "--appendonly", "no" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await Wait.UntilAsync(async () =>
        {
            try
            {
                await using var c = await ConnectionMultiplexer.ConnectAsync($"{Configuration},connectTimeout=1000,abortConnect=true");
                return (await c.GetDatabase().PingAsync()) >= TimeSpan.Zero;
            }
            catch (RedisConnectionException)
            {
                return false;
            }
        }, "redis-server PING");
    }

    public async Task StopAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    public Task DisposeAsync() => StopAsync();
}

/// <summary>
/// Our Socket.IO server on Kestrel loopback with the Redis adapter: handlers "join", "leave" and
/// "broadcast" (socket.broadcast) as in the Node peer, and socket.data.server = "dotnet"; the
/// adapter's health check at /healthz.
/// </summary>
public sealed class DotNetNode : IAsyncDisposable
{
    private readonly WebApplication _app;

    private DotNetNode(WebApplication app, int port)
    {
        _app = app;
        Port = port;
        Io = app.Services.GetRequiredService<SocketIOServer>();
    }

    public int Port { get; }

    public string Url => $"http://127.0.0.1:{Port}";

    public SocketIOServer Io { get; }

    public RedisAdapter Adapter => (RedisAdapter)Io.Sockets.Adapter;

    public IServiceProvider Services => _app.Services;

    public static async Task<DotNetNode> StartAsync(string redis, string key, TimeSpan? requestsTimeout = null, ILoggerProvider? logs = null, bool specificResponseChannel = false)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        builder.Services.AddSocketIO().AddRedisAdapter(o =>
        {
            o.Configuration = redis;
            o.Key = key;
            o.RequestsTimeout = requestsTimeout ?? TimeSpan.FromSeconds(3);
            o.PublishOnSpecificResponseChannel = specificResponseChannel;
        });
        builder.Services.AddHealthChecks().AddSocketIORedis();
        var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO();
        app.MapHealthChecks("/healthz");
        var io = app.Services.GetRequiredService<SocketIOServer>();
        io.Sockets.OnConnection(socket =>
        {
            socket.Data["server"] = "dotnet";
            socket.On("join", ctx =>
            {
                socket.Join(ctx.GetArg<string>(0)!);
                ctx.Ack(true);
            });
            socket.On("leave", ctx =>
            {
                socket.Leave(ctx.GetArg<string>(0)!);
                ctx.Ack(true);
            });
            socket.On("broadcast", ctx =>
            {
                socket.Broadcast.Emit(ctx.GetArg<string>(0)!, ctx.ToObjects()[1]);
                ctx.Ack(true);
            });
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var node = new DotNetNode(app, new Uri(address).Port);
        await node.Adapter.Subscribed.WaitAsync(Wait.Deadline);
        return node;
    }

    public async ValueTask DisposeAsync()
    {
        Io.Close();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>An event a Node client received.</summary>
public sealed record Received(string Client, string Event, JsonArray Args);

/// <summary>The Node peer process (tests/SocketIO.Redis.Tests/node/peer.js), driven over stdin/stdout JSON lines.</summary>
public sealed class NodePeer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Dictionary<int, TaskCompletionSource<JsonNode?>> _pending = [];
    private readonly List<Received> _received = [];
    private readonly List<JsonNode> _serverEvents = [];
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<JsonNode> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _nextId;

    private NodePeer(Process process) => _process = process;

    public static string Dir => Path.Combine(Wait.RepoRoot, "tests", "SocketIO.Redis.Tests", "node");

    public int Port { get; private set; }

    public string Url => $"http://127.0.0.1:{Port}";

    public string Uid { get; private set; } = string.Empty;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<NodePeer> StartAsync(int redisPort, string key, bool specificResponseChannel = false)
    {
        if (!File.Exists(Path.Combine(Dir, "node_modules", "@socket.io", "redis-adapter", "package.json")))
        {
            throw new InvalidOperationException($"run `npm ci` in {Dir} (./test.sh does)");
        }

        var psi = new ProcessStartInfo("node")
        {
            WorkingDirectory = Dir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("peer.js");
        psi.ArgumentList.Add(redisPort.ToString(CultureInfo.InvariantCulture));
        psi.ArgumentList.Add(key);
        if (specificResponseChannel)
        {
            psi.ArgumentList.Add("specific");
        }
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var peer = new NodePeer(process);
        process.OutputDataReceived += (_, e) => peer.OnLine(e.Data, true);
        process.ErrorDataReceived += (_, e) => peer.OnLine(e.Data, false);
        process.Exited += (_, _) => peer._ready.TrySetException(new InvalidOperationException("node peer exited:\n" + peer.Output));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var ready = await peer._ready.Task.WaitAsync(Wait.Deadline);
        peer.Port = ready["port"]!.GetValue<int>();
        peer.Uid = ready["uid"]!.GetValue<string>();
        return peer;
    }

    private void OnLine(string? line, bool stdout)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (!stdout || !line.StartsWith('{'))
        {
            return;
        }

        var node = JsonNode.Parse(line)!;
        if (node["ready"] is not null)
        {
            _ready.TrySetResult(node);
        }
        else if (node["recv"] is { } client)
        {
            lock (_received)
            {
                _received.Add(new Received(client.GetValue<string>(), node["event"]!.GetValue<string>(), node["args"]!.AsArray()));
            }
        }
        else if (node["serverEvent"] is not null)
        {
            lock (_serverEvents)
            {
                _serverEvents.Add(node);
            }
        }
        else if (node["id"] is { } id)
        {
            TaskCompletionSource<JsonNode?>? tcs;
            lock (_pending)
            {
                _pending.Remove(id.GetValue<int>(), out tcs);
            }

            if (node["ok"]!.GetValue<bool>())
            {
                tcs?.TrySetResult(node["result"]?.DeepClone());
            }
            else
            {
                tcs?.TrySetException(new InvalidOperationException("node peer: " + node["error"]));
            }
        }
    }

    /// <summary>Runs an op of peer.js and returns its result.</summary>
    public async Task<JsonNode?> RunAsync(string op, object? args = null)
    {
        var command = args is null ? new JsonObject() : JsonSerializer.SerializeToNode(args, JsonSerializerOptions.Web)!.AsObject();
        var tcs = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending)
        {
            command["id"] = ++_nextId;
            _pending[_nextId] = tcs;
        }

        command["op"] = op;
        await _process.StandardInput.WriteLineAsync(command.ToJsonString());
        await _process.StandardInput.FlushAsync();
        try
        {
            return await tcs.Task.WaitAsync(Wait.Deadline);
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"node peer: no answer to {op}. Output:\n{Output}", ex);
        }
    }

    /// <summary>Connects a Node socket.io-client named <paramref name="client"/> to <paramref name="url"/>; returns its socket id.</summary>
    public async Task<string> ConnectAsync(string client, string url) =>
        (await RunAsync("connect", new { client, url }))!.GetValue<string>();

    public async Task JoinAsync(string client, string room) =>
        await RunAsync("clientEmit", new { client, @event = "join", args = new[] { room } });

    public IReadOnlyList<Received> Received(string client, string eventName)
    {
        lock (_received)
        {
            return [.. _received.Where(r => r.Client == client && r.Event == eventName)];
        }
    }

    public IReadOnlyList<JsonNode> ServerEvents
    {
        get
        {
            lock (_serverEvents)
            {
                return [.. _serverEvents];
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // exited meanwhile
            }

            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

/// <summary>One Node.js node and one .NET node on a shared redis-server under a key of their own.</summary>
public sealed class Cluster : IAsyncDisposable
{
    private Cluster(NodePeer node, DotNetNode ours, string key)
    {
        Node = node;
        Ours = ours;
        Key = key;
    }

    public NodePeer Node { get; }

    public DotNetNode Ours { get; }

    public string Key { get; }

    public static async Task<Cluster> StartAsync(RedisServer redis, ILoggerProvider? logs = null, bool specificResponseChannel = false)
    {
        var key = "t" + Guid.NewGuid().ToString("N")[..10];
        var node = await NodePeer.StartAsync(redis.Port, key, specificResponseChannel);
        try
        {
            var ours = await DotNetNode.StartAsync(redis.Configuration + ",connectTimeout=1000", key, logs: logs, specificResponseChannel: specificResponseChannel);
            var cluster = new Cluster(node, ours, key);
            await Wait.UntilAsync(async () => (await node.RunAsync("serverCount"))!.GetValue<int>() == 2 && await ours.Adapter.ServerCountAsync() == 2, "both nodes subscribed");
            return cluster;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Broadcasts a "fence" event to everyone from <paramref name="fromOurs"/>'s side and waits for
    /// each client to receive it: what was published before it has been delivered by then.
    /// </summary>
    public async Task FenceAsync(bool fromOurs, params string[] clients)
    {
        var before = clients.ToDictionary(c => c, c => Node.Received(c, "fence").Count);
        if (fromOurs)
        {
            Ours.Io.Emit("fence");
        }
        else
        {
            await Node.RunAsync("emit", new { @event = "fence" });
        }

        await Wait.UntilAsync(() => clients.All(c => Node.Received(c, "fence").Count > before[c]), "fence on " + string.Join(", ", clients));
    }

    public async ValueTask DisposeAsync()
    {
        await Ours.DisposeAsync();
        await Node.DisposeAsync();
    }
}

/// <summary>Keeps the log lines of the loggers it creates.</summary>
public sealed class CapturingLogs : ILoggerProvider
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLogs owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (owner._lines)
            {
                owner._lines.Add($"{logLevel} {category}: {formatter(state, exception)}");
            }
        }
    }
}
