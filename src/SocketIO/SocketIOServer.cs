using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using EngineIO;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>
/// A Socket.IO v5 server over Engine.IO v4. Create it through <c>services.AddSocketIO()</c> and
/// expose it with <c>app.MapSocketIO("/socket.io")</c>.
/// </summary>
public sealed class SocketIOServer : IEngineHandler
{
    private readonly ConcurrentDictionary<string, SocketIONamespace> _namespaces = new(StringComparer.Ordinal);
    private readonly List<(Func<string, JsonElement, bool> Accepts, SocketIONamespace Parent)> _dynamic = [];
    private int _dynamicCount;

    /// <summary>A server with <paramref name="options"/>; logs to <paramref name="loggerFactory"/>.</summary>
    public SocketIOServer(SocketIOOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "ConnectTimeout must be positive.");
        }

        Options = options;
        var jsonParser = options.Parser as JsonPacketParser;
        Parser = options.Parser ?? (jsonParser = new JsonPacketParser(options.JsonSerializerOptions));
        SerializerOptions = jsonParser?.SerializerOptions ?? JsonPacketParser.CreateOptions(options.JsonSerializerOptions);
        Log = loggerFactory?.CreateLogger<SocketIOServer>() ?? NullLogger<SocketIOServer>.Instance;
        Engine = new EngineIOServer(options.Engine, this, loggerFactory?.CreateLogger<EngineIOServer>());
        Of("/");
    }

    /// <summary>The options this server runs with.</summary>
    public SocketIOOptions Options { get; }

    /// <summary>The packet format of this server.</summary>
    public ISocketIOParser Parser { get; }

    /// <summary>The serializer settings used for event arguments (with binary support).</summary>
    public JsonSerializerOptions SerializerOptions { get; }

    /// <summary>The Engine.IO server carrying this Socket.IO server.</summary>
    public EngineIOServer Engine { get; }

    internal ILogger Log { get; }

    /// <summary>The main namespace "/".</summary>
    public SocketIONamespace Sockets => Of("/");

    /// <summary>Gets or creates a static namespace.</summary>
    public SocketIONamespace Of(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name[0] != '/')
        {
            name = "/" + name;
        }

        return _namespaces.GetOrAdd(name, static (n, server) => new SocketIONamespace(server, n), this);
    }

    /// <summary>
    /// A dynamic namespace: any namespace whose name (and auth payload) the predicate accepts is
    /// created on first connection and shares the returned parent's middleware and handlers.
    /// </summary>
    public SocketIONamespace Of(Func<string, JsonElement, bool> accepts)
    {
        ArgumentNullException.ThrowIfNull(accepts);
        var parent = new SocketIONamespace(this, $"/_{Interlocked.Increment(ref _dynamicCount)}");
        lock (_dynamic)
        {
            _dynamic.Add((accepts, parent));
        }

        return parent;
    }

    /// <summary>A dynamic namespace for the names the pattern matches.</summary>
    public SocketIONamespace Of(Regex pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return Of((name, _) => pattern.IsMatch(name));
    }

    internal SocketIONamespace? ResolveNamespace(string name, JsonElement auth)
    {
        if (name == "/" && !Options.ServeMainNamespace)
        {
            return null;
        }

        if (_namespaces.TryGetValue(name, out var nsp))
        {
            return nsp;
        }

        lock (_dynamic)
        {
            foreach (var (accepts, parent) in _dynamic)
            {
                if (accepts(name, auth))
                {
                    var child = parent.Child(name);
                    return _namespaces.GetOrAdd(name, child);
                }
            }
        }

        return null;
    }

    /// <summary>Targets the main namespace's sockets in <paramref name="rooms"/>.</summary>
    public BroadcastOperator To(params string[] rooms) => Sockets.To(rooms);

    /// <summary>Same as <see cref="To"/>.</summary>
    public BroadcastOperator In(params string[] rooms) => Sockets.In(rooms);

    /// <summary>Every socket of the main namespace but those in <paramref name="rooms"/>.</summary>
    public BroadcastOperator Except(params string[] rooms) => Sockets.Except(rooms);

    /// <summary>Sends an event to every socket of the main namespace.</summary>
    public void Emit(string eventName, params object?[] args) => Sockets.Emit(eventName, args);

    /// <summary>Closes every connection ("server shutting down").</summary>
    public void Close() => Engine.CloseAll();

    void IEngineHandler.OnOpen(EngineSession session) => session.State = new Client(this, session);

    void IEngineHandler.OnMessage(EngineSession session, EngineMessage message) => ((Client)session.State!).OnMessage(message);

    void IEngineHandler.OnClose(EngineSession session, string reason) => (session.State as Client)?.OnClose(reason);
}
