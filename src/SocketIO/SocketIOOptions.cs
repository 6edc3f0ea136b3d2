using System.Text.Json;
using EngineIO;
using SocketIO.Adapters;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>Options of the Socket.IO server.</summary>
public sealed class SocketIOOptions
{
    /// <summary>The Engine.IO transport options.</summary>
    public EngineIOOptions Engine { get; } = new();

    /// <summary>How long a new connection may take to join a namespace before it is closed.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(45);

    /// <summary>
    /// Whether clients may connect to the main namespace "/" (true, as the reference server).
    /// False for an application that serves only its own namespaces: a CONNECT to "/" then gets
    /// CONNECT_ERROR "Invalid namespace" like any namespace not served, and the connection is
    /// closed at <see cref="ConnectTimeout"/> unless it joins a served one.
    /// </summary>
    public bool ServeMainNamespace { get; set; } = true;

    /// <summary>Serializer settings for event arguments (camelCase web defaults when null).</summary>
    public JsonSerializerOptions? JsonSerializerOptions { get; set; }

    /// <summary>The packet format; the JSON parser by default.</summary>
    public ISocketIOParser? Parser { get; set; }

    /// <summary>Connection state recovery (Socket.IO 4.6+ semantics); null disables it.</summary>
    public ConnectionStateRecoveryOptions? ConnectionStateRecovery { get; set; }

    /// <summary>
    /// How the event handlers of one socket run. <see cref="HandlerConcurrency.Sequential"/> (the
    /// default, as SignalR's one invocation per connection at a time): an event's handlers run in
    /// order, each awaited, and the next event of the socket waits until they are done, so a
    /// handler sees the socket's events in order and never races another of its handlers.
    /// <see cref="HandlerConcurrency.Concurrent"/>: as Node's EventEmitter, every handler is started
    /// as its event arrives and async handlers of one socket may interleave.
    /// </summary>
    public HandlerConcurrency HandlerConcurrency { get; set; } = HandlerConcurrency.Sequential;

    /// <summary>
    /// Sequential handlers: events of one socket that may wait behind a running handler (1024);
    /// one more disconnects the socket (a client that floods a slow handler holds bounded memory).
    /// </summary>
    public int MaxQueuedEventsPerSocket { get; set; } = 1024;

    /// <summary>Creates each namespace's adapter; the in-memory adapter by default.</summary>
    public Func<SocketIONamespace, IAdapter>? AdapterFactory { get; set; }
}

/// <summary>How the event handlers of one socket run (<see cref="SocketIOOptions.HandlerConcurrency"/>).</summary>
public enum HandlerConcurrency
{
    /// <summary>One event at a time per socket, its handlers in order, each awaited (the default).</summary>
    Sequential,

    /// <summary>Every handler started as its event arrives; async handlers of a socket may interleave (Node's semantics).</summary>
    Concurrent,
}

/// <summary>How long a disconnected client's state (id, rooms, data, missed packets) is kept.</summary>
public sealed class ConnectionStateRecoveryOptions
{
    /// <summary>How long a disconnected session is kept (2 minutes).</summary>
    public TimeSpan MaxDisconnectionDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Whether a recovered connection skips the namespace middleware.</summary>
    public bool SkipMiddlewares { get; set; } = true;

    /// <summary>Upper bound on packets kept for replay per namespace (oldest dropped first).</summary>
    public int MaxStoredPackets { get; set; } = 100_000;
}
