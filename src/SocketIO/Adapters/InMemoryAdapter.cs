using SocketIO.Parser;

namespace SocketIO.Adapters;

/// <summary>
/// Rooms and fan-out for the sockets of this node. With connection state recovery on, every
/// non-volatile broadcast without ack gets an offset (appended as last argument) and is kept
/// for <see cref="ConnectionStateRecoveryOptions.MaxDisconnectionDuration"/> for replay.
/// </summary>
public class InMemoryAdapter : IAdapter
{
    private readonly RoomIndex _index;
    private readonly RecoveryStore? _recovery;
    private readonly TimeProvider _time;

    /// <summary>The adapter of <paramref name="nsp"/>.</summary>
    public InMemoryAdapter(SocketIONamespace nsp)
    {
        ArgumentNullException.ThrowIfNull(nsp);
        Namespace = nsp;
        _time = nsp.Server.Options.Engine.TimeProvider;
        _index = new RoomIndex(nsp);
        if (nsp.Server.Options.ConnectionStateRecovery is { } recovery)
        {
            _recovery = new RecoveryStore(recovery, _time);
        }
    }

    /// <summary>The namespace this adapter serves.</summary>
    public SocketIONamespace Namespace { get; }

    /// <summary>The rooms that have at least one socket.</summary>
    public IReadOnlyCollection<string> Rooms => _index.Rooms;

    /// <inheritdoc/>
    public void AddAll(string socketId, IEnumerable<string> rooms)
    {
        ArgumentNullException.ThrowIfNull(rooms);
        _index.AddAll(socketId, rooms);
    }

    /// <inheritdoc/>
    public void Del(string socketId, string room) => _index.Del(socketId, room);

    /// <inheritdoc/>
    public void DelAll(string socketId) => _index.DelAll(socketId);

    /// <inheritdoc/>
    public IReadOnlySet<string> SocketRooms(string socketId) => _index.SocketRooms(socketId);

    /// <inheritdoc/>
    public IReadOnlySet<string> Sockets(IReadOnlySet<string> rooms)
    {
        ArgumentNullException.ThrowIfNull(rooms);
        return _index.Sockets(rooms);
    }

    /// <inheritdoc/>
    public virtual void Broadcast(BroadcastMessage message, BroadcastOptions options)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(options);
        var data = BuildEventData(message);
        StoredPacket? stored = null;
        if (_recovery is not null && !options.Volatile)
        {
            stored = _recovery.Store(data, options);
            data = stored.Data!;
        }

        // encoded once, for the first recipient: a broadcast to a room nobody is in on this node
        // (a project's events while nobody watches) costs no encoding
        EncodedPacket? encoded = null;
        var (recipients, excluded) = _index.Recipients(options);
        foreach (var socket in recipients)
        {
            if (Receives(socket, excluded))
            {
                encoded ??= Namespace.Server.Parser.Encode(SocketPacketType.Event, Namespace.Name, null, data, options.Volatile);
                socket.SendEncoded(encoded);
            }
        }

        // the recovery store keeps the packet rather than the arguments, which then die young
        if (encoded is not null)
        {
            stored?.SetEncoded(encoded);
        }
    }

    /// <inheritdoc/>
    public virtual Task<BroadcastAckResult> BroadcastWithAckAsync(BroadcastMessage message, BroadcastOptions options, CancellationToken cancellationToken) =>
        BroadcastWithAckAsync(message, options, null, cancellationToken);

    /// <summary>
    /// Broadcasts locally with an ack id and waits for the acks as <see cref="BroadcastWithAckAsync(BroadcastMessage, BroadcastOptions, CancellationToken)"/>,
    /// also handing each ack to <paramref name="onEachAck"/> the moment it arrives (a cluster adapter
    /// forwards them one by one, as the Node.js adapters do).
    /// </summary>
    protected async Task<BroadcastAckResult> BroadcastWithAckAsync(BroadcastMessage message, BroadcastOptions options, Action<AckResponse>? onEachAck, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(options);
        var id = Namespace.NextAckId();
        var encoded = Namespace.Server.Parser.Encode(SocketPacketType.Event, Namespace.Name, id, BuildEventData(message), options.Volatile);
        var waits = new List<Task<AckResponse>>();
        Apply(options, (socket, state) => waits.Add(socket.SendWithAck(state, id)), encoded);
        if (onEachAck is not null)
        {
            foreach (var wait in waits)
            {
                _ = wait.ContinueWith(
                    static (t, state) =>
                    {
                        if (t.IsCompletedSuccessfully)
                        {
                            ((Action<AckResponse>)state!)(t.Result);
                        }
                    },
                    onEachAck,
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
            }
        }
        var all = Task.WhenAll(waits);
        var timedOut = false;
        try
        {
            await all.WaitAsync(options.Timeout ?? Timeout.InfiniteTimeSpan, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            timedOut = true;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            timedOut = true;
        }

        var responses = new List<AckResponse>(waits.Count);
        foreach (var wait in waits)
        {
            if (wait.IsCompletedSuccessfully)
            {
                responses.Add(wait.Result);
            }
        }

        return new BroadcastAckResult(responses, waits.Count, timedOut || responses.Count < waits.Count);
    }

    /// <inheritdoc/>
    public virtual Task<IReadOnlyList<RemoteSocket>> FetchSocketsAsync(BroadcastOptions options, CancellationToken cancellationToken)
    {
        var result = new List<RemoteSocket>();
        Apply(options, (socket, _) => result.Add(new RemoteSocket(socket)), (object?)null);
        return Task.FromResult<IReadOnlyList<RemoteSocket>>(result);
    }

    /// <inheritdoc/>
    public virtual void AddSockets(BroadcastOptions options, IReadOnlyList<string> rooms) =>
        Apply(options, static (socket, r) => socket.Join(r!), rooms);

    /// <inheritdoc/>
    public virtual void DelSockets(BroadcastOptions options, IReadOnlyList<string> rooms) =>
        Apply(options, static (socket, r) =>
        {
            foreach (var room in r!)
            {
                socket.Leave(room);
            }
        }, rooms);

    /// <inheritdoc/>
    public virtual void DisconnectSockets(BroadcastOptions options, bool close) =>
        Apply(options, static (socket, c) => socket.Disconnect(c), close);

    /// <summary>
    /// Calls <paramref name="action"/> for each local recipient, each once. The common cases (one
    /// room, or everyone, possibly minus a few) iterate a cached array of the members, rebuilt
    /// only when membership changes: a broadcast neither copies nor looks up its recipients.
    /// </summary>
    protected void Apply<TState>(BroadcastOptions options, Action<SocketIOSocket, TState> action, TState state)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(action);
        var (recipients, excluded) = _index.Recipients(options);
        foreach (var socket in recipients)
        {
            if (Receives(socket, excluded))
            {
                action(socket, state);
            }
        }
    }

    /// <summary>Whether a socket of a broadcast's rooms gets it: connected, and not in a room it excepts.</summary>
    private static bool Receives(SocketIOSocket socket, HashSet<string>? excluded) =>
        socket.Connected && (excluded is null || !excluded.Contains(socket.Id));

    private static object?[] BuildEventData(BroadcastMessage message)
    {
        var data = new object?[message.Args.Length + 1];
        data[0] = message.EventName;
        message.Args.CopyTo(data, 1);
        return data;
    }

    /// <inheritdoc/>
    public virtual ValueTask PersistSessionAsync(PersistedSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _recovery?.Persist(session);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public virtual ValueTask<RestoredSession?> RestoreSessionAsync(string pid, string offset)
    {
        if (_recovery?.Restore(pid, offset) is not { } restored)
        {
            return ValueTask.FromResult<RestoredSession?>(null);
        }

        // the missed events as sent: kept encoded, or encoded now (nobody on this node got them)
        var encoded = new EncodedPacket[restored.Missed.Count];
        for (var i = 0; i < encoded.Length; i++)
        {
            encoded[i] = restored.Missed[i].Encode(data => Namespace.Server.Parser.Encode(SocketPacketType.Event, Namespace.Name, null, data));
        }

        return ValueTask.FromResult<RestoredSession?>(new RestoredSession(restored.Session, []) { EncodedMissedPackets = encoded });
    }

    /// <summary>Stops the recovery store's expiry timer.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the adapter's resources; <paramref name="disposing"/> is false from a finalizer.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            _recovery?.Dispose();
        }
    }
}
