namespace SocketIO.Adapters;

/// <summary>
/// The room index of one namespace on this node: which sockets are in which room, and the cached
/// arrays of a room's (and everyone's) sockets that a broadcast iterates. Thread-safe.
/// </summary>
internal sealed class RoomIndex(SocketIONamespace nsp)
{
    private readonly Dictionary<string, Room> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SocketRoomSet> _sids = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private SocketIOSocket[]? _everyone;

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

    /// <summary>Adds <paramref name="socketId"/> to <paramref name="rooms"/>.</summary>
    public void AddAll(string socketId, IEnumerable<string> rooms)
    {
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

    /// <summary>Removes <paramref name="socketId"/> from <paramref name="room"/>.</summary>
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

    /// <summary>Removes <paramref name="socketId"/> from every room.</summary>
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

    /// <summary>The rooms of <paramref name="socketId"/>.</summary>
    public IReadOnlySet<string> SocketRooms(string socketId)
    {
        lock (_gate)
        {
            return _sids.TryGetValue(socketId, out var own) ? new HashSet<string>(own.Rooms, StringComparer.Ordinal) : BroadcastOptions.EmptySet;
        }
    }

    /// <summary>The ids of the sockets in any of <paramref name="rooms"/> (every socket when empty).</summary>
    public IReadOnlySet<string> Sockets(IReadOnlySet<string> rooms)
    {
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

    /// <summary>
    /// The local recipients of a broadcast to <paramref name="options"/>: the cached array of the
    /// members of its room (or of everyone) and the ids to skip, or the union of its rooms minus
    /// the excluded when it names several rooms.
    /// </summary>
    public (SocketIOSocket[] Recipients, HashSet<string>? Excluded) Recipients(BroadcastOptions options)
    {
        SocketIOSocket[] recipients;
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
                    return ([], null);
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

        return (recipients, excluded);
    }

    private SocketIOSocket[] Resolve(IEnumerable<string> ids)
    {
        var sockets = nsp.SocketsById;
        var result = new List<SocketIOSocket>();
        foreach (var id in ids)
        {
            if (sockets.TryGetValue(id, out var socket))
            {
                result.Add(socket);
            }
        }

        return [.. result];
    }

    private SocketIOSocket[] UnionOfRooms(BroadcastOptions options)
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

        public SocketIOSocket[]? Snapshot { get; set; }

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
}
