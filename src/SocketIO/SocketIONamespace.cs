using System.Collections.Concurrent;
using System.Text.Json;
using SocketIO.Adapters;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>
/// A Socket.IO namespace: its middleware, connection handlers, sockets and adapter. A dynamic
/// namespace (created by <see cref="SocketIOServer.Of(Func{string, JsonElement, bool})"/>) is the
/// parent of the concrete namespaces it accepts; they share its middleware and handlers.
/// </summary>
public sealed class SocketIONamespace
{
    private readonly List<Func<SocketIOSocket, CancellationToken, ValueTask>> _middlewares = [];
    private readonly List<Func<SocketIOSocket, ValueTask>> _connectionHandlers = [];
    private readonly ConcurrentDictionary<string, SocketIONamespace> _children = new(StringComparer.Ordinal);
    private readonly SocketIONamespace? _parent;
    private IAdapter? _adapter;
    private long _ackIds;

    internal SocketIONamespace(SocketIOServer server, string name, SocketIONamespace? parent = null)
    {
        Server = server;
        Name = name;
        _parent = parent;
    }

    /// <summary>The namespace's name, "/" for the main one.</summary>
    public string Name { get; }

    /// <summary>The server serving it.</summary>
    public SocketIOServer Server { get; }

    /// <summary>The adapter holding the rooms and fanning out broadcasts.</summary>
    public IAdapter Adapter
    {
        get
        {
            if (_adapter is null)
            {
                var created = Server.Options.AdapterFactory?.Invoke(this) ?? new InMemoryAdapter(this);
                if (Interlocked.CompareExchange(ref _adapter, created, null) is not null)
                {
                    created.Dispose();
                }
            }

            return _adapter;
        }
    }

    /// <summary>Connected sockets of this node, by id.</summary>
    public IReadOnlyDictionary<string, SocketIOSocket> Sockets => SocketsById;

    internal ConcurrentDictionary<string, SocketIOSocket> SocketsById { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Adds middleware, run in order for every connection before it is accepted. Throwing
    /// <see cref="ConnectRejectedException"/> (or any exception) refuses the connection: the client
    /// gets connect_error with the message (and <c>data</c>).
    /// </summary>
    public SocketIONamespace Use(Func<SocketIOSocket, CancellationToken, ValueTask> middleware)
    {
        ArgumentNullException.ThrowIfNull(middleware);
        lock (_middlewares)
        {
            _middlewares.Add(middleware);
        }

        return this;
    }

    /// <summary>Runs <paramref name="handler"/> for every socket that joins, after the middleware accepted it.</summary>
    public SocketIONamespace OnConnection(Func<SocketIOSocket, ValueTask> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        lock (_connectionHandlers)
        {
            _connectionHandlers.Add(handler);
        }

        return this;
    }

    /// <summary>Runs <paramref name="handler"/> for every socket that joins, after the middleware accepted it.</summary>
    public SocketIONamespace OnConnection(Action<SocketIOSocket> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return OnConnection(socket =>
        {
            handler(socket);
            return ValueTask.CompletedTask;
        });
    }

    /// <summary>Targets the sockets in <paramref name="rooms"/>.</summary>
    public BroadcastOperator To(params string[] rooms) => new BroadcastOperator(this).To(rooms);

    /// <summary>Same as <see cref="To"/>.</summary>
    public BroadcastOperator In(params string[] rooms) => To(rooms);

    /// <summary>Every socket but those in <paramref name="rooms"/>.</summary>
    public BroadcastOperator Except(params string[] rooms) => new BroadcastOperator(this).Except(rooms);

    /// <summary>Every socket, as a volatile emission (dropped rather than queued when a client lags).</summary>
    public BroadcastOperator Volatile => new BroadcastOperator(this).Volatile;

    /// <summary>This node's sockets only (no cluster fan-out).</summary>
    public BroadcastOperator Local => new BroadcastOperator(this).Local;

    /// <summary>Broadcasts whose acknowledgements are awaited for at most <paramref name="timeout"/>.</summary>
    public BroadcastOperator Timeout(TimeSpan timeout) => new BroadcastOperator(this).Timeout(timeout);

    /// <summary>Sends an event to every socket of the namespace (of every child, for a dynamic namespace).</summary>
    public void Emit(string eventName, params object?[] args)
    {
        if (_children.IsEmpty)
        {
            new BroadcastOperator(this).Emit(eventName, args);
            return;
        }

        foreach (var child in _children.Values)
        {
            child.Emit(eventName, args);
        }
    }

    /// <summary>Sends an event to every socket and waits for their acknowledgements.</summary>
    public Task<IReadOnlyList<AckResponse>> EmitWithAckAsync(string eventName, object?[] args, CancellationToken cancellationToken = default) =>
        new BroadcastOperator(this).EmitWithAckAsync(eventName, args, cancellationToken);

    /// <summary>The namespace's sockets, on every node.</summary>
    public Task<IReadOnlyList<RemoteSocket>> FetchSocketsAsync(CancellationToken cancellationToken = default) =>
        new BroadcastOperator(this).FetchSocketsAsync(cancellationToken);

    /// <summary>Makes every socket join <paramref name="rooms"/>.</summary>
    public void SocketsJoin(params string[] rooms) => new BroadcastOperator(this).SocketsJoin(rooms);

    /// <summary>Makes every socket leave <paramref name="rooms"/>.</summary>
    public void SocketsLeave(params string[] rooms) => new BroadcastOperator(this).SocketsLeave(rooms);

    /// <summary>Disconnects every socket, closing their connections when <paramref name="close"/>.</summary>
    public void DisconnectSockets(bool close = false) => new BroadcastOperator(this).DisconnectSockets(close);

    internal long NextAckId() => Interlocked.Increment(ref _ackIds) - 1;

    internal SocketIONamespace Child(string name) => _children.GetOrAdd(name, static (n, parent) => new SocketIONamespace(parent.Server, n, parent), this);

    /// <summary>Runs recovery and middleware; returns the socket to connect, or null when refused.</summary>
    internal async Task<SocketIOSocket?> AddAsync(Client client, JsonElement auth)
    {
        var recovery = Server.Options.ConnectionStateRecovery;
        RestoredSession? restored = null;
        if (recovery is not null && auth.ValueKind == JsonValueKind.Object
            && auth.TryGetProperty("pid", out var pid) && pid.ValueKind == JsonValueKind.String
            && auth.TryGetProperty("offset", out var offset) && offset.ValueKind == JsonValueKind.String)
        {
            restored = await Adapter.RestoreSessionAsync(pid.GetString()!, offset.GetString()!);

            // the replay goes through the bounded send queue in one go: a backlog it cannot hold
            // would overflow it at once, so such a client starts a fresh session (recovered false)
            if (restored is not null && (restored.MissedCount + 1 > Server.Options.Engine.MaxBufferedPackets || !ReplayFits(restored)))
            {
                SocketIOLog.RecoveryDeclined(Server.Log, restored.Session.Pid, restored.MissedCount);
                restored = null;
            }
        }

        var socket = new SocketIOSocket(this, client, auth, restored?.Session);
        socket.Restored = restored;
        if (restored is null || recovery?.SkipMiddlewares != true)
        {
            var owner = _parent ?? this;
            Func<SocketIOSocket, CancellationToken, ValueTask>[] middlewares;
            lock (owner._middlewares)
            {
                middlewares = [.. owner._middlewares];
            }

            foreach (var middleware in middlewares)
            {
                try
                {
                    await middleware(socket, client.Session.Closed);
                }
                catch (ConnectRejectedException ex)
                {
                    socket.AbortConnect();
                    Reject(client, ex.Message, ex.ErrorData);
                    return null;
                }
#pragma warning disable CA1031 // any middleware failure refuses the connection, as next(err) does
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    socket.AbortConnect();
                    if (!client.Session.IsOpen)
                    {
                        return null;
                    }

                    SocketIOLog.MiddlewareRefused(Server.Log, ex, Name);
                    Reject(client, ex.Message, null);
                    return null;
                }
            }
        }

        if (!client.Session.IsOpen)
        {
            socket.AbortConnect();
            return null;
        }

        return socket;
    }

    /// <summary>Whether the replay of <paramref name="restored"/> fits the send queue's byte budget (argument arrays are encoded once more when sent: a rare path).</summary>
    private bool ReplayFits(RestoredSession restored)
    {
        var budget = Server.Options.Engine.MaxBufferedBytes;
        var bytes = 0L;
        foreach (var packet in ReplayPackets(restored))
        {
            foreach (var message in packet.Messages)
            {
                bytes += message.Frame.Length;
            }

            if (bytes > budget)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The missed events of <paramref name="restored"/> as sent, in order.</summary>
    private IEnumerable<EncodedPacket> ReplayPackets(RestoredSession restored)
    {
        foreach (var missed in restored.MissedPackets)
        {
            yield return Server.Parser.Encode(SocketPacketType.Event, Name, null, missed);
        }

        foreach (var encoded in restored.EncodedMissedPackets)
        {
            yield return encoded;
        }
    }

    private void Reject(Client client, string message, object? data)
    {
        var payload = new Dictionary<string, object?> { ["message"] = message };
        if (data is not null)
        {
            payload["data"] = data;
        }

        client.Send(Server.Parser.Encode(SocketPacketType.ConnectError, Name, null, payload));
    }

    internal void CompleteConnect(SocketIOSocket socket)
    {
        SocketsById[socket.Id] = socket;
        var restored = socket.Restored;
        socket.Restored = null;
        socket.OnConnected(restored?.Session.Rooms);
        if (restored is not null)
        {
            foreach (var packet in ReplayPackets(restored))
            {
                socket.SendEncoded(packet);
            }
        }

        var owner = _parent ?? this;
        Func<SocketIOSocket, ValueTask>[] handlers;
        lock (owner._connectionHandlers)
        {
            handlers = [.. owner._connectionHandlers];
        }

        foreach (var handler in handlers)
        {
            try
            {
                var pending = handler(socket);
                if (!pending.IsCompletedSuccessfully)
                {
                    _ = ObserveAsync(pending);
                }
            }
#pragma warning disable CA1031 // an application handler's failure must not break the connection
            catch (Exception ex)
#pragma warning restore CA1031
            {
                SocketIOLog.ConnectionHandlerFailed(Server.Log, ex, Name);
            }
        }
    }

    private async Task ObserveAsync(ValueTask pending)
    {
        try
        {
            await pending;
        }
#pragma warning disable CA1031 // an application handler's failure must not break the connection
        catch (Exception ex)
#pragma warning restore CA1031
        {
            SocketIOLog.ConnectionHandlerFailed(Server.Log, ex, Name);
        }
    }

    internal void Remove(SocketIOSocket socket) => SocketsById.TryRemove(new KeyValuePair<string, SocketIOSocket>(socket.Id, socket));
}
