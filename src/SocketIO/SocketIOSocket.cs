using System.Collections.Concurrent;
using System.Text.Json;
using EngineIO;
using Microsoft.Extensions.Logging;
using SocketIO.Adapters;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>A client's connection to one namespace.</summary>
public sealed class SocketIOSocket
{
    private static readonly string[] s_reserved = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];
    private const int MaxHandlerArray = 8;

    // Event handlers, for the few a socket usually has: an array of (name, handler) searched in
    // order, never changed once published (On swaps in a new one), so lookups take no lock; beyond
    // MaxHandlerArray a dictionary, changed and read under its own lock.
    private object? _handlers; // EventHandlerEntry[] or Dictionary<string, Delegate[]>
    private ConcurrentDictionary<long, TaskCompletionSource<AckResponse>>? _acks; // created on first use
    private Action<string>[]? _disconnecting; // the disconnect handlers: copied on write, created on first use
    private Action<string>[]? _disconnected;
    private Delegate[]? _any;
    private Queue<(Delegate[] Handlers, SocketEventContext Context)>? _waiting; // sequential mode: events behind the running one
    private bool _busy; // sequential mode: an event's handlers are running (guarded by _handlersLock)
    private readonly Lock _handlersLock = new();
    private ConcurrentDictionary<string, object?>? _data;
    private Action? _connectAborted; // set by middleware, dropped once the connection completes
    private int _connected;

    internal SocketIOSocket(SocketIONamespace nsp, Client client, JsonElement auth, PersistedSession? previous)
    {
        Namespace = nsp;
        Client = client;
        Handshake = new Handshake(client.Session.Request, auth, nsp.Server.Options.Engine.TimeProvider.GetUtcNow());
        if (previous is not null)
        {
            Id = previous.SocketId;
            Pid = previous.Pid;
            Recovered = true;
            foreach (var pair in previous.Data)
            {
                Data[pair.Key] = pair.Value;
            }
        }
        else
        {
            Id = SessionId.New();
            Pid = nsp.Server.Options.ConnectionStateRecovery is null ? null : SessionId.New();
        }
    }

    /// <summary>The socket id (20 characters), fresh for each namespace connection unless recovered.</summary>
    public string Id { get; }

    /// <summary>Private session id for connection state recovery (null when recovery is off).</summary>
    internal string? Pid { get; }

    /// <summary>The namespace the socket joined.</summary>
    public SocketIONamespace Namespace { get; }

    internal Client Client { get; }

    /// <summary>The recovered session, between its restoration and the connection.</summary>
    internal RestoredSession? Restored { get; set; }

    /// <summary>The underlying Engine.IO session.</summary>
    public EngineSession Conn => Client.Session;

    /// <summary>The handshake details: headers, query, address, auth.</summary>
    public Handshake Handshake { get; }

    /// <summary>
    /// Application data attached to the socket (restored on recovery). Created on first use, with
    /// one lock stripe: most sockets never use it, and a dictionary with the default striping
    /// costs about 800 bytes per connection.
    /// </summary>
    public ConcurrentDictionary<string, object?> Data =>
        LazyInitializer.EnsureInitialized(ref _data, static () => new(concurrencyLevel: 1, capacity: 4, StringComparer.Ordinal));

    /// <summary>A copy of <see cref="Data"/>, without creating it when unused.</summary>
    internal Dictionary<string, object?> DataCopy() =>
        System.Threading.Volatile.Read(ref _data) is { } data ? new(data, StringComparer.Ordinal) : new(StringComparer.Ordinal);

    /// <summary>Whether the socket is still connected.</summary>
    public bool Connected => System.Threading.Volatile.Read(ref _connected) == 1;

    /// <summary>Whether this connection recovered a previous session (id, rooms, data and missed events).</summary>
    public bool Recovered { get; }

    /// <summary>The rooms the socket is in (including its own id).</summary>
    public IReadOnlySet<string> Rooms => Namespace.Adapter.SocketRooms(Id);

    private ILogger Log => Namespace.Server.Log;

    /// <summary>
    /// Adds a handler of an event, after those already added (Node's <c>socket.on</c>): every
    /// handler of the event runs, in order. How the handlers of successive events interleave is
    /// <see cref="SocketIOOptions.HandlerConcurrency"/> (one event at a time by default).
    /// </summary>
    public void On(string eventName, Func<SocketEventContext, ValueTask> handler) => ChangeHandlers(eventName, handler, add: true);

    /// <summary>Adds a synchronous handler of an event, after those already added; kept as given, with no wrapper.</summary>
    public void On(string eventName, Action<SocketEventContext> handler) => ChangeHandlers(eventName, handler, add: true);

    /// <summary>Removes a handler added with <see cref="On(string, Func{SocketEventContext, ValueTask})"/> (the last one added, if it was added more than once).</summary>
    public void Off(string eventName, Func<SocketEventContext, ValueTask> handler) => ChangeHandlers(eventName, handler, add: false);

    /// <summary>Removes a handler added with <see cref="On(string, Action{SocketEventContext})"/> (the last one added, if it was added more than once).</summary>
    public void Off(string eventName, Action<SocketEventContext> handler) => ChangeHandlers(eventName, handler, add: false);

    /// <summary>Removes every handler of an event (Node's <c>socket.removeAllListeners(event)</c>).</summary>
    public void Off(string eventName) => ChangeHandlers(eventName, null, add: false);

    // handler: a Func<SocketEventContext, ValueTask> or an Action<SocketEventContext>; null with add false removes all
    private void ChangeHandlers(string eventName, Delegate? handler, bool add)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        if (add || handler is not null)
        {
            ArgumentNullException.ThrowIfNull(handler);
        }

        var current = System.Threading.Volatile.Read(ref _handlers);
        while (true)
        {
            if (current is Dictionary<string, Delegate[]> map)
            {
                lock (map)
                {
                    var changed = Changed(map.GetValueOrDefault(eventName), handler, add);
                    if (changed is null)
                    {
                        map.Remove(eventName);
                    }
                    else
                    {
                        map[eventName] = changed;
                    }
                }

                return;
            }

            var seen = Interlocked.CompareExchange(ref _handlers, WithHandlers((EventHandlerEntry[]?)current, eventName, handler, add), current);
            if (ReferenceEquals(seen, current))
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>Called for events that have no handler of their own (replacing any previous catch-all).</summary>
    public void OnAny(Func<SocketEventContext, ValueTask> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        _any = [handler];
    }

    /// <summary>Called before the socket leaves its rooms.</summary>
    public void OnDisconnecting(Action<string> handler) => Append(ref _disconnecting, handler);

    /// <summary>Called once the socket has disconnected, with the reason.</summary>
    public void OnDisconnect(Action<string> handler) => Append(ref _disconnected, handler);

    /// <summary>
    /// For middleware that takes something per connection (a slot under a limit): called when
    /// this connection does not complete after all (a later middleware refused it, or the client
    /// went away first). Not called once the connection is made; disconnect handlers are then.
    /// </summary>
    public void OnConnectAborted(Action handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        Action? current, seen = System.Threading.Volatile.Read(ref _connectAborted);
        do
        {
            current = seen;
            seen = Interlocked.CompareExchange(ref _connectAborted, current + handler, current);
        }
        while (!ReferenceEquals(seen, current));
    }

    /// <summary>The connection was not made: runs (once) what middleware registered with <see cref="OnConnectAborted"/>.</summary>
    internal void AbortConnect()
    {
        try
        {
            Interlocked.Exchange(ref _connectAborted, null)?.Invoke();
        }
#pragma warning disable CA1031 // an application handler's failure must not break the connection
        catch (Exception ex)
#pragma warning restore CA1031
        {
            SocketIOLog.ConnectAbortedHandlerFailed(Log, ex, Id);
        }
    }

    /// <summary>Joins rooms.</summary>
    public void Join(params string[] rooms) => Namespace.Adapter.AddAll(Id, rooms);

    /// <summary>Joins rooms.</summary>
    public void Join(IEnumerable<string> rooms) => Namespace.Adapter.AddAll(Id, rooms);

    /// <summary>Leaves a room.</summary>
    public void Leave(string room) => Namespace.Adapter.Del(Id, room);

    /// <summary>Sends an event to this client; byte[] values anywhere in the arguments go as binary.</summary>
    public void Emit(string eventName, params object?[] args)
    {
        CheckEventName(eventName);
        if (Namespace.Server.Options.ConnectionStateRecovery is not null)
        {
            // through the adapter, so the packet gets an offset and can be replayed after a blip
            Namespace.Adapter.Broadcast(new BroadcastMessage(eventName, args), new BroadcastOptions { Rooms = new HashSet<string> { Id } });
            return;
        }

        SendEncoded(Namespace.Server.Parser.Encode(SocketPacketType.Event, Namespace.Name, null, EventData(eventName, args)));
    }

    /// <summary>Sends an event and waits for the client's acknowledgement.</summary>
    public async Task<AckResponse> EmitWithAckAsync(string eventName, object?[] args, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        CheckEventName(eventName);
        var id = Namespace.NextAckId();
        var encoded = Namespace.Server.Parser.Encode(SocketPacketType.Event, Namespace.Name, id, EventData(eventName, args));
        var wait = SendWithAck(encoded, id);
        try
        {
            return await wait.WaitAsync(timeout, Namespace.Server.Options.Engine.TimeProvider, cancellationToken);
        }
        finally
        {
            _acks?.TryRemove(id, out _);
        }
    }

    /// <summary>Every socket in <paramref name="rooms"/> but this one.</summary>
    public BroadcastOperator To(params string[] rooms) => new BroadcastOperator(Namespace).Except(Id).To(rooms);

    /// <summary>Same as <see cref="To"/>.</summary>
    public BroadcastOperator In(params string[] rooms) => To(rooms);

    /// <summary>Every socket but this one and those in <paramref name="rooms"/>.</summary>
    public BroadcastOperator Except(params string[] rooms) => new BroadcastOperator(Namespace).Except(Id).Except(rooms);

    /// <summary>This socket only, as a volatile emission (dropped rather than queued or stored when the client lags).</summary>
    public BroadcastOperator Volatile => new BroadcastOperator(Namespace).To(Id).Volatile;

    /// <summary>Every socket of the namespace but this one.</summary>
    public BroadcastOperator Broadcast => new BroadcastOperator(Namespace).Except(Id);

    /// <summary>Disconnects from the namespace; with <paramref name="close"/> the whole connection closes.</summary>
    public void Disconnect(bool close = false)
    {
        if (!Connected)
        {
            return;
        }

        if (close)
        {
            Client.DisconnectAll();
            return;
        }

        SendEncoded(Namespace.Server.Parser.Encode(SocketPacketType.Disconnect, Namespace.Name, null, null));
        OnClose(DisconnectReason.ServerNamespaceDisconnect);
    }

    internal void SendEncoded(EncodedPacket packet) => Client.Send(packet);

    internal Task<AckResponse> SendWithAck(EncodedPacket packet, long id)
    {
        var tcs = new TaskCompletionSource<AckResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        LazyInitializer.EnsureInitialized(ref _acks)[id] = tcs;
        if (!Connected)
        {
            tcs.TrySetException(new InvalidOperationException("The socket is disconnected."));
        }

        Client.Send(packet);
        return tcs.Task;
    }

    internal void SendAck(long id, object?[] args) =>
        SendEncoded(Namespace.Server.Parser.Encode(SocketPacketType.Ack, Namespace.Name, id, args));

    internal void OnConnected(IReadOnlyList<string>? restoredRooms)
    {
        System.Threading.Volatile.Write(ref _connectAborted, null);
        System.Threading.Volatile.Write(ref _connected, 1);
        Namespace.Adapter.AddAll(Id, restoredRooms is null ? [Id] : restoredRooms.Append(Id));
        var data = new Dictionary<string, string>(2) { ["sid"] = Id };
        if (Pid is not null)
        {
            data["pid"] = Pid;
        }

        SendEncoded(Namespace.Server.Parser.Encode(SocketPacketType.Connect, Namespace.Name, null, data));
    }

    internal void OnPacket(SocketPacket packet)
    {
        switch (packet.Type)
        {
            case SocketPacketType.Event:
            case SocketPacketType.BinaryEvent:
                OnEvent(packet);
                break;
            case SocketPacketType.Ack:
            case SocketPacketType.BinaryAck:
                if (packet.Id is { } id && _acks is { } acks && acks.TryRemove(id, out var tcs))
                {
                    tcs.TrySetResult(new AckResponse(Id, packet.Data!.Value, packet.Attachments, Namespace.Server.SerializerOptions));
                }

                break;
            case SocketPacketType.Disconnect:
                OnClose(DisconnectReason.ClientNamespaceDisconnect);
                break;
            default:
                Client.Close();
                break;
        }
    }

    private void OnEvent(SocketPacket packet)
    {
        var array = packet.Data!.Value;
        var first = array[0];
        var name = first.ValueKind == JsonValueKind.String ? first.GetString()! : first.GetRawText();
        var handlers = Handlers(name) ?? System.Threading.Volatile.Read(ref _any);
        if (handlers is null)
        {
            return;
        }

        var context = new SocketEventContext(this, name, array, packet.Attachments, packet.Id, Namespace.Server.SerializerOptions);
        if (Namespace.Server.Options.HandlerConcurrency == HandlerConcurrency.Concurrent)
        {
            // as Node's EventEmitter: every handler started in order, none awaited
            foreach (var handler in handlers)
            {
                var pending = Start(handler, context);
                if (!pending.IsCompletedSuccessfully)
                {
                    _ = ObserveAsync(pending, name);
                }
            }

            return;
        }

        lock (_handlersLock)
        {
            if (_busy)
            {
                var waiting = _waiting ??= new();
                if (waiting.Count >= Namespace.Server.Options.MaxQueuedEventsPerSocket)
                {
                    SocketIOLog.HandlersBacklogged(Log, Id, waiting.Count);
                    waiting.Clear();
                    _ = Task.Run(() => Disconnect(close: true));
                    return;
                }

                waiting.Enqueue((handlers, context));
                return;
            }

            _busy = true;
        }

        RunInOrder(handlers, context, 0);
    }

    /// <summary>
    /// Sequential mode: runs the handlers of one event in order, each awaited, then those of the
    /// events that arrived meanwhile; synchronous handlers run inline with no allocation.
    /// </summary>
    private void RunInOrder(Delegate[] handlers, SocketEventContext context, int next)
    {
        while (true)
        {
            for (; next < handlers.Length; next++)
            {
                var pending = Start(handlers[next], context);
                if (!pending.IsCompleted)
                {
                    _ = ContinueAsync(pending, handlers, context, next + 1);
                    return;
                }

                Observe(pending, context.EventName);
            }

            lock (_handlersLock)
            {
                if (_waiting is not { Count: > 0 } waiting)
                {
                    _busy = false;
                    return;
                }

                (handlers, context) = waiting.Dequeue();
                next = 0;
            }
        }
    }

    private async Task ContinueAsync(ValueTask pending, Delegate[] handlers, SocketEventContext context, int next)
    {
        await ObserveAsync(pending, context.EventName).ConfigureAwait(false);
        RunInOrder(handlers, context, next);
    }

    /// <summary>Calls one handler; a synchronous failure is logged and comes back as a completed task.</summary>
    private ValueTask Start(Delegate handler, SocketEventContext context)
    {
        try
        {
            if (handler is Action<SocketEventContext> action)
            {
                action(context);
                return ValueTask.CompletedTask;
            }

            return ((Func<SocketEventContext, ValueTask>)handler)(context);
        }
#pragma warning disable CA1031 // an application handler's failure must not break the connection
        catch (Exception ex)
#pragma warning restore CA1031
        {
            SocketIOLog.EventHandlerFailed(Log, ex, Id, context.EventName);
            return ValueTask.CompletedTask;
        }
    }

    private void Observe(ValueTask completed, string name)
    {
        if (!completed.IsCompletedSuccessfully)
        {
            _ = ObserveAsync(completed, name);
        }
    }

    private async Task ObserveAsync(ValueTask pending, string name)
    {
        try
        {
            await pending.ConfigureAwait(false);
        }
#pragma warning disable CA1031 // an application handler's failure must not break the connection
        catch (Exception ex)
#pragma warning restore CA1031
        {
            SocketIOLog.EventHandlerFailed(Log, ex, Id, name);
        }
    }

    internal void OnClose(string reason)
    {
        if (Interlocked.Exchange(ref _connected, 0) != 1)
        {
            return;
        }

        Invoke(System.Threading.Volatile.Read(ref _disconnecting), reason);
        if (Pid is not null && DisconnectReason.IsRecoverable(reason))
        {
            // the socket's own id stays in: packets addressed to it (its emits) are replayed, and
            // packets excepting it are not
            var rooms = Namespace.Adapter.SocketRooms(Id).ToList();
            _ = Namespace.Adapter.PersistSessionAsync(new PersistedSession(Id, Pid, rooms, DataCopy()));
        }

        Namespace.Adapter.DelAll(Id);
        Namespace.Remove(this);
        Client.Remove(this);
        var acks = _acks ?? [];
        foreach (var pair in acks)
        {
            if (acks.TryRemove(pair.Key, out var tcs))
            {
                tcs.TrySetException(new InvalidOperationException($"The socket disconnected ({reason})."));
            }
        }

        Invoke(System.Threading.Volatile.Read(ref _disconnected), reason);
    }

    private void Invoke(Action<string>[]? handlers, string reason)
    {
        foreach (var handler in handlers ?? [])
        {
            try
            {
                handler(reason);
            }
#pragma warning disable CA1031 // an application handler's failure must not break the disconnection
            catch (Exception ex)
#pragma warning restore CA1031
            {
                SocketIOLog.DisconnectHandlerFailed(Log, ex, Id);
            }
        }
    }

    /// <summary>The handlers of an event, in order, or null.</summary>
    private Delegate[]? Handlers(string name)
    {
        switch (System.Threading.Volatile.Read(ref _handlers))
        {
            case EventHandlerEntry[] entries:
                foreach (var entry in entries)
                {
                    if (string.Equals(entry.Name, name, StringComparison.Ordinal))
                    {
                        return entry.Handlers;
                    }
                }

                return null;
            case Dictionary<string, Delegate[]> map:
                lock (map)
                {
                    return map.TryGetValue(name, out var handlers) ? handlers : null;
                }

            default:
                return null;
        }
    }

    /// <summary><paramref name="handlers"/> with <paramref name="handler"/> added or removed (all removed when null); null when none is left.</summary>
    private static Delegate[]? Changed(Delegate[]? handlers, Delegate? handler, bool add)
    {
        if (add)
        {
            return handlers is null ? [handler!] : [.. handlers, handler!];
        }

        if (handler is null || handlers is null)
        {
            return null;
        }

        var i = Array.LastIndexOf(handlers, handler);
        if (i < 0)
        {
            return handlers;
        }

        return handlers.Length == 1 ? null : [.. handlers[..i], .. handlers[(i + 1)..]];
    }

    /// <summary>A copy of <paramref name="entries"/> with the handlers of <paramref name="name"/> changed.</summary>
    private static object? WithHandlers(EventHandlerEntry[]? entries, string name, Delegate? handler, bool add)
    {
        entries ??= [];
        for (var i = 0; i < entries.Length; i++)
        {
            if (string.Equals(entries[i].Name, name, StringComparison.Ordinal))
            {
                var changed = Changed(entries[i].Handlers, handler, add);
                if (changed is null)
                {
                    return entries.Length == 1 ? null : (object)entries.Where((_, j) => j != i).ToArray();
                }

                var replaced = (EventHandlerEntry[])entries.Clone();
                replaced[i] = new EventHandlerEntry(entries[i].Name, changed);
                return replaced;
            }
        }

        if (!add)
        {
            return entries.Length == 0 ? null : entries;
        }

        if (entries.Length < MaxHandlerArray)
        {
            EventHandlerEntry[] added = [.. entries, new EventHandlerEntry(name, [handler!])];
            return added;
        }

        var map = new Dictionary<string, Delegate[]>(entries.Length + 1, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            map[entry.Name] = entry.Handlers;
        }

        map[name] = [handler!];
        return map;
    }

    /// <summary>Adds a handler to a copy-on-write list (lock-free: readers see the old or the new array).</summary>
    private static void Append(ref Action<string>[]? handlers, Action<string> handler)
    {
        var current = System.Threading.Volatile.Read(ref handlers);
        while (true)
        {
            Action<string>[] next = current is null ? [handler] : [.. current, handler];
            var seen = Interlocked.CompareExchange(ref handlers, next, current);
            if (ReferenceEquals(seen, current))
            {
                return;
            }

            current = seen;
        }
    }

    internal static object?[] EventData(string eventName, object?[] args)
    {
        var data = new object?[args.Length + 1];
        data[0] = eventName;
        args.CopyTo(data, 1);
        return data;
    }

    internal static void CheckEventName(string eventName)
    {
        ArgumentNullException.ThrowIfNull(eventName);
        if (Array.IndexOf(s_reserved, eventName) >= 0)
        {
            throw new ArgumentException($"\"{eventName}\" is a reserved event name.", nameof(eventName));
        }
    }

    private readonly record struct EventHandlerEntry(string Name, Delegate[] Handlers);
}
