using System.Globalization;
using EngineIO;
using SocketIO.Parser;

namespace SocketIO.Adapters;

/// <summary>
/// The connection state recovery store of one namespace on this node: every stored broadcast gets
/// an offset (appended as its last argument) and is kept for
/// <see cref="ConnectionStateRecoveryOptions.MaxDisconnectionDuration"/> (at most
/// <see cref="ConnectionStateRecoveryOptions.MaxStoredPackets"/>), with the sessions of
/// disconnected sockets, so that a socket reconnecting in time gets its rooms and what it missed.
/// A stored broadcast keeps its encoded form once it has one (the adapter encodes it for its first
/// recipient), not its arguments: 100 000 stored events of the gateway held about 14 objects each
/// (envelope, parsed payload, room set...) for two minutes, 280 MB of a 400 MB heap that every
/// collection of the young generations had to promote; encoded, an event is its frame and four
/// small objects, and the arguments die young.
/// </summary>
internal sealed class RecoveryStore : IDisposable
{
    private readonly ConnectionStateRecoveryOptions _recovery;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly string _offsetPrefix = SessionId.New()[..8];
    private readonly Dictionary<string, (PersistedSession Session, DateTimeOffset DisconnectedAt)> _sessions = new(StringComparer.Ordinal);
    private readonly Queue<StoredPacket> _packets = new();
    private readonly ITimer _cleanup;
    private long _nextOffset;

    public RecoveryStore(ConnectionStateRecoveryOptions recovery, TimeProvider time)
    {
        _recovery = recovery;
        _time = time;
        _cleanup = _time.CreateDetachedTimer(static s => ((RecoveryStore)s!).Cleanup(), this, TimeSpan.FromSeconds(60), TimeSpan.FromSeconds(60));
    }

    /// <summary>Stores a broadcast's data; the stored packet's <see cref="StoredPacket.Data"/> is the data with its offset appended.</summary>
    public StoredPacket Store(object?[] data, BroadcastOptions options)
    {
        string[] rooms = options.Rooms.Count == 0 ? [] : [.. options.Rooms];
        string[] except = options.Except.Count == 0 ? [] : [.. options.Except];
        lock (_gate)
        {
            var offset = _offsetPrefix + "-" + (++_nextOffset).ToString("x", CultureInfo.InvariantCulture);
            var withOffset = new object?[data.Length + 1];
            data.CopyTo(withOffset, 0);
            withOffset[^1] = offset;
            var packet = new StoredPacket(_nextOffset, rooms, except, withOffset, _time.GetUtcNow().UtcTicks);
            _packets.Enqueue(packet);
            while (_packets.Count > _recovery.MaxStoredPackets)
            {
                _packets.Dequeue();
            }

            return packet;
        }
    }

    /// <summary>Keeps the session of a socket that disconnected.</summary>
    public void Persist(PersistedSession session)
    {
        lock (_gate)
        {
            _sessions[session.Pid] = (session, _time.GetUtcNow());
        }
    }

    /// <summary>The session <paramref name="pid"/> and the broadcasts after <paramref name="offset"/> it missed, in order; null when it cannot be recovered.</summary>
    public (PersistedSession Session, List<StoredPacket> Missed)? Restore(string pid, string offset)
    {
        lock (_gate)
        {
            if (!_sessions.Remove(pid, out var entry))
            {
                return null;
            }

            if (entry.DisconnectedAt + _recovery.MaxDisconnectionDuration < _time.GetUtcNow())
            {
                return null;
            }

            if (!TryParseOffset(offset, out var seq))
            {
                return null;
            }

            var missed = new List<StoredPacket>();
            var found = false;
            var rooms = new HashSet<string>(entry.Session.Rooms, StringComparer.Ordinal);
            foreach (var packet in _packets)
            {
                if (packet.Seq == seq)
                {
                    found = true;
                    continue;
                }

                if (packet.Seq > seq && packet.Includes(rooms))
                {
                    missed.Add(packet);
                }
            }

            // an offset no longer in the buffer means packets may have been lost: no recovery
            return found ? (entry.Session, missed) : null;
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
        var limit = _time.GetUtcNow() - _recovery.MaxDisconnectionDuration;
        lock (_gate)
        {
            while (_packets.TryPeek(out var oldest) && oldest.EmittedAtTicks < limit.UtcTicks)
            {
                _packets.Dequeue();
            }

            foreach (var pid in _sessions.Where(s => s.Value.DisconnectedAt < limit).Select(s => s.Key).ToList())
            {
                _sessions.Remove(pid);
            }
        }
    }

    public void Dispose() => _cleanup.Dispose();
}

/// <summary>
/// A broadcast kept for recovery: its offset's number, the rooms it went to and left out, and its
/// content, the arguments (offset last) until <see cref="SetEncoded"/> swaps them for the encoded
/// packet.
/// </summary>
internal sealed class StoredPacket(long seq, string[] rooms, string[] except, object?[] data, long emittedAtTicks)
{
    private object _content = data;

    public long Seq { get; } = seq;

    public long EmittedAtTicks { get; } = emittedAtTicks;

    /// <summary>The arguments with the offset appended; null once encoded.</summary>
    public object?[]? Data => Volatile.Read(ref _content) as object?[];

    /// <summary>Keeps <paramref name="encoded"/> (the packet of <see cref="Data"/>) instead of the arguments.</summary>
    public void SetEncoded(EncodedPacket encoded) => Volatile.Write(ref _content, encoded);

    /// <summary>The encoded packet, encoding the arguments with <paramref name="encode"/> if nobody did yet.</summary>
    public EncodedPacket Encode(Func<object?[], EncodedPacket> encode)
    {
        var content = Volatile.Read(ref _content);
        if (content is EncodedPacket encoded)
        {
            return encoded;
        }

        encoded = encode((object?[])content);
        SetEncoded(encoded);
        return encoded;
    }

    /// <summary>Whether a socket in <paramref name="socketRooms"/> was a recipient.</summary>
    public bool Includes(IReadOnlySet<string> socketRooms) => BroadcastOptions.Includes(rooms, except, socketRooms);
}
