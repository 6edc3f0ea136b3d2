using System.Globalization;
using EngineIO;
using SocketIO.Parser;

namespace SocketIO.Adapters;

/// <summary>
/// Rooms and fan-out for the sockets of this node. With connection state recovery on, every
/// non-volatile broadcast without ack gets an offset (appended as last argument) and is kept
/// for <see cref="ConnectionStateRecoveryOptions.MaxDisconnectionDuration"/> for replay.
/// </summary>
public class InMemoryAdapter : IAdapter
{
    private readonly Dictionary<string, Room> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SocketRoomSet> _sids = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly ConnectionStateRecoveryOptions? _recovery;
    private readonly TimeProvider _time;
    private readonly string _offsetPrefix = SessionId.New()[..8];
    private readonly Dictionary<string, (PersistedSession Session, DateTimeOffset DisconnectedAt)> _sessions = new(StringComparer.Ordinal);
    private readonly Queue<StoredPacket> _packets = new();
    private readonly ITimer? _cleanup;
    private long _nextOffset;
    private Socket[]? _everyone;

    /// <summary>The adapter of <paramref name="nsp"/>.</summary>
    public InMemoryAdapter(Namespace nsp)
    {
        ArgumentNullException.ThrowIfNull(nsp);
        Namespace = nsp;
        _recovery = nsp.Server.Options.ConnectionStateRecovery;
        _time = nsp.Server.Options.Engine.TimeProvider;
        if (_recovery is not null)
        {
            _cleanup = _time.CreateDetachedTimer(static s => ((InMemoryAdapter)s!).Cleanup(), this, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60));
        }
    }

    /// <summary>The namespace this adapter serves.</summary>
    public Namespace Namespace { get; }

    /// <summary>The rooms that have at least one socket.</summary>
    public IReadOnlyCollection<string> Rooms
    {
        get
        {
            lock (_gate)
            {
                return [.. _rooms.Keys];
            }
        }
    }

    /// <inheritdoc/>
    public void AddAll(string socketId, IEnumerable<string> rooms)
    {
        ArgumentNullException.ThrowIfNull(rooms);
        lock (_gate)
        {
            if (!_sids.TryGetValue(socketId, out var own))
            {
                own = new SocketRoomSet();
                _sids[socketId] = own;
                _everyone = null;
            }

            foreach (var room in rooms)
            {
                own.Add(room);
                if (!_rooms.TryGetValue(room, out var members))
                {
                    members = new Room();
                    _rooms[room] = members;
                }

                if (members.Add(socketId))
                {
                    members.Snapshot = null;
                }
            }
        }
    }

    /// <inheritdoc/>
    public void Del(string socketId, string room)
    {
        lock (_gate)
        {
            if (_sids.TryGetValue(socketId, out var own))
            {
                own.Remove(room);
            }

            RemoveMember(room, socketId);
        }
    }

    /// <inheritdoc/>
    public void DelAll(string socketId)
    {
        lock (_gate)
        {
            if (!_sids.Remove(socketId, out var own))
            {
                return;
            }

            _everyone = null;

            foreach (var room in own.Rooms)
            {
                RemoveMember(room, socketId);
            }
        }
    }

    private void RemoveMember(string room, string socketId)
    {
        if (_rooms.TryGetValue(room, out var members) && members.Remove(socketId))
        {
            members.Snapshot = null;
            if (members.Count == 0)
            {
                _rooms.Remove(room);
            }
        }
    }

    /// <inheritdoc/>
    public IReadOnlySet<string> SocketRooms(string socketId)
    {
        lock (_gate)
        {
            return _sids.TryGetValue(socketId, out var own) ? new HashSet<string>(own.Rooms, StringComparer.Ordinal) : BroadcastOptions.EmptySet;
        }
    }

    /// <inheritdoc/>
    public IReadOnlySet<string> Sockets(IReadOnlySet<string> rooms)
    {
        ArgumentNullException.ThrowIfNull(rooms);
        var result = new HashSet<string>(StringComparer.Ordinal);
        lock (_gate)
        {
            if (rooms.Count == 0)
            {
                result.UnionWith(_sids.Keys);
            }
            else
            {
                foreach (var room in rooms)
                {
                    if (_rooms.TryGetValue(room, out var members))
                    {
                        result.UnionWith(members.Ids);
                    }
                }
            }
        }

        return result;
    }

    /// <inheritdoc/>
    public virtual void Broadcast(BroadcastMessage message, BroadcastOptions options)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(options);
        var data = BuildEventData(message);
        if (_recovery is not null && !options.Volatile)
        {
            data = StoreForRecovery(data, options);
        }

        var encoded = Namespace.Server.Parser.Encode(SocketPacketType.Event, Namespace.Name, null, data, options.Volatile);
        Apply(options, static (socket, state) => socket.SendEncoded(state), encoded);
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
    protected void Apply<TState>(BroadcastOptions options, Action<Socket, TState> action, TState state)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(action);
        Socket[] recipients;
        HashSet<string>? excluded = null;
        lock (_gate)
        {
            if (options.Rooms.Count > 1)
            {
                recipients = UnionOfRooms(options);
            }
            else if (options.Rooms.Count == 1)
            {
                if (!_rooms.TryGetValue(options.Rooms.First(), out var room))
                {
                    return;
                }

                recipients = room.Snapshot ??= Resolve(room.Ids);
            }
            else
            {
                recipients = _everyone ??= Resolve(_sids.Keys);
            }

            if (options.Rooms.Count <= 1 && options.Except.Count > 0)
            {
                excluded = new HashSet<string>(StringComparer.Ordinal);
                foreach (var room in options.Except)
                {
                    if (_rooms.TryGetValue(room, out var members))
                    {
                        excluded.UnionWith(members.Ids);
                    }
                }
            }
        }

        foreach (var socket in recipients)
        {
            if (socket.Connected && (excluded is null || !excluded.Contains(socket.Id)))
            {
                action(socket, state);
            }
        }
    }

    private Socket[] Resolve(IEnumerable<string> ids)
    {
        var sockets = Namespace.SocketsById;
        var result = new List<Socket>();
        foreach (var id in ids)
        {
            if (sockets.TryGetValue(id, out var socket))
            {
                result.Add(socket);
            }
        }

        return [.. result];
    }

    private Socket[] UnionOfRooms(BroadcastOptions options)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var room in options.Rooms)
        {
            if (_rooms.TryGetValue(room, out var members))
            {
                foreach (var id in members.Ids)
                {
                    if (_sids.TryGetValue(id, out var own) && !IsExcluded(own, options))
                    {
                        seen.Add(id);
                    }
                }
            }
        }

        return Resolve(seen);
    }

    private static bool IsExcluded(SocketRoomSet own, BroadcastOptions options)
    {
        foreach (var room in options.Except)
        {
            if (own.Contains(room))
            {
                return true;
            }
        }

        return false;
    }

    private static object?[] BuildEventData(BroadcastMessage message)
    {
        var data = new object?[message.Args.Length + 1];
        data[0] = message.EventName;
        message.Args.CopyTo(data, 1);
        return data;
    }

    // ---- connection state recovery ----

    private object?[] StoreForRecovery(object?[] data, BroadcastOptions options)
    {
        lock (_gate)
        {
            var offset = _offsetPrefix + "-" + (++_nextOffset).ToString("x", CultureInfo.InvariantCulture);
            var withOffset = new object?[data.Length + 1];
            data.CopyTo(withOffset, 0);
            withOffset[^1] = offset;
            _packets.Enqueue(new StoredPacket(_nextOffset, options, withOffset, _time.GetUtcNow()));
            while (_packets.Count > _recovery!.MaxStoredPackets)
            {
                _packets.Dequeue();
            }

            return withOffset;
        }
    }

    /// <inheritdoc/>
    public virtual ValueTask PersistSessionAsync(PersistedSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (_recovery is not null)
        {
            lock (_gate)
            {
                _sessions[session.Pid] = (session, _time.GetUtcNow());
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public virtual ValueTask<RestoredSession?> RestoreSessionAsync(string pid, string offset)
    {
        if (_recovery is null)
        {
            return ValueTask.FromResult<RestoredSession?>(null);
        }

        lock (_gate)
        {
            if (!_sessions.Remove(pid, out var entry))
            {
                return ValueTask.FromResult<RestoredSession?>(null);
            }

            if (entry.DisconnectedAt + _recovery.MaxDisconnectionDuration < _time.GetUtcNow())
            {
                return ValueTask.FromResult<RestoredSession?>(null);
            }

            if (!TryParseOffset(offset, out var seq))
            {
                return ValueTask.FromResult<RestoredSession?>(null);
            }

            var missed = new List<object?[]>();
            var found = false;
            var rooms = new HashSet<string>(entry.Session.Rooms, StringComparer.Ordinal);
            foreach (var packet in _packets)
            {
                if (packet.Seq == seq)
                {
                    found = true;
                    continue;
                }

                if (packet.Seq > seq && packet.Options.Includes(rooms))
                {
                    missed.Add(packet.Data);
                }
            }

            // an offset no longer in the buffer means packets may have been lost: no recovery
            return ValueTask.FromResult(found ? new RestoredSession(entry.Session, missed) : null);
        }
    }

    private bool TryParseOffset(string offset, out long seq)
    {
        seq = 0;
        return offset.Length > _offsetPrefix.Length + 1
            && offset.StartsWith(_offsetPrefix, StringComparison.Ordinal)
            && offset[_offsetPrefix.Length] == '-'
            && long.TryParse(offset.AsSpan(_offsetPrefix.Length + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out seq);
    }

    private void Cleanup()
    {
        var limit = _time.GetUtcNow() - _recovery!.MaxDisconnectionDuration;
        lock (_gate)
        {
            while (_packets.TryPeek(out var oldest) && oldest.EmittedAt < limit)
            {
                _packets.Dequeue();
            }

            foreach (var pid in _sessions.Where(s => s.Value.DisconnectedAt < limit).Select(s => s.Key).ToList())
            {
                _sessions.Remove(pid);
            }
        }
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
            _cleanup?.Dispose();
        }
    }

    /// <summary>
    /// A room's members, and the cached array of their sockets (null once it changed). Every
    /// socket has a room of its own with itself alone in it: a one-member room keeps its member in
    /// a field, and a set exists from the second member on.
    /// </summary>
    private sealed class Room
    {
        private string? _one;
        private HashSet<string>? _many;

        public int Count => _many?.Count ?? (_one is null ? 0 : 1);

        public IEnumerable<string> Ids => _many ?? (_one is null ? [] : [_one]);

        public Socket[]? Snapshot { get; set; }

        public bool Add(string id)
        {
            if (_many is not null)
            {
                return _many.Add(id);
            }

            if (_one is null)
            {
                _one = id;
                return true;
            }

            if (string.Equals(_one, id, StringComparison.Ordinal))
            {
                return false;
            }

            _many = new HashSet<string>(StringComparer.Ordinal) { _one, id };
            _one = null;
            return true;
        }

        public bool Remove(string id)
        {
            if (_many is not null)
            {
                return _many.Remove(id);
            }

            if (_one is not null && string.Equals(_one, id, StringComparison.Ordinal))
            {
                _one = null;
                return true;
            }

            return false;
        }
    }

    /// <summary>
    /// The rooms of one socket: its own id and typically one room it joined. Up to two are kept in
    /// fields (in the order they were added), a set exists from the third on.
    /// </summary>
    private sealed class SocketRoomSet
    {
        private string? _first;
        private string? _second; // set only while _first is
        private HashSet<string>? _many;

        public IEnumerable<string> Rooms => _many ?? (_first is null ? [] : _second is null ? [_first] : [_first, _second]);

        public bool Contains(string room) => _many?.Contains(room) ?? InFields(room);

        public void Add(string room)
        {
            if (_many is not null)
            {
                _many.Add(room);
            }
            else if (InFields(room))
            {
                return;
            }
            else if (_first is null)
            {
                _first = room;
            }
            else if (_second is null)
            {
                _second = room;
            }
            else
            {
                _many = new HashSet<string>(StringComparer.Ordinal) { _first, _second, room };
                _first = null;
                _second = null;
            }
        }

        public void Remove(string room)
        {
            if (_many is not null)
            {
                _many.Remove(room);
            }
            else if (string.Equals(_first, room, StringComparison.Ordinal))
            {
                _first = _second;
                _second = null;
            }
            else if (string.Equals(_second, room, StringComparison.Ordinal))
            {
                _second = null;
            }
        }

        private bool InFields(string room) =>
            room is not null && (string.Equals(_first, room, StringComparison.Ordinal) || string.Equals(_second, room, StringComparison.Ordinal));
    }

    private sealed record StoredPacket(long Seq, BroadcastOptions Options, object?[] Data, DateTimeOffset EmittedAt);
}
