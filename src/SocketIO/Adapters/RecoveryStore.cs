using System.Globalization;
using EngineIO;

namespace SocketIO.Adapters;

/// <summary>
/// The connection state recovery store of one namespace on this node: every stored broadcast gets
/// an offset (appended as its last argument) and is kept for
/// <see cref="ConnectionStateRecoveryOptions.MaxDisconnectionDuration"/> (at most
/// <see cref="ConnectionStateRecoveryOptions.MaxStoredPackets"/>), with the sessions of
/// disconnected sockets, so that a socket reconnecting in time gets its rooms and what it missed.
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

    /// <summary>Stores a broadcast's data; returns it with its offset appended.</summary>
    public object?[] Store(object?[] data, BroadcastOptions options)
    {
        lock (_gate)
        {
            var offset = _offsetPrefix + "-" + (++_nextOffset).ToString("x", CultureInfo.InvariantCulture);
            var withOffset = new object?[data.Length + 1];
            data.CopyTo(withOffset, 0);
            withOffset[^1] = offset;
            _packets.Enqueue(new StoredPacket(_nextOffset, options, withOffset, _time.GetUtcNow()));
            while (_packets.Count > _recovery.MaxStoredPackets)
            {
                _packets.Dequeue();
            }

            return withOffset;
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

    /// <summary>The session <paramref name="pid"/> and the broadcasts after <paramref name="offset"/> it missed; null when it cannot be recovered.</summary>
    public RestoredSession? Restore(string pid, string offset)
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
            return found ? new RestoredSession(entry.Session, missed) : null;
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

    public void Dispose() => _cleanup.Dispose();

    private sealed record StoredPacket(long Seq, BroadcastOptions Options, object?[] Data, DateTimeOffset EmittedAt);
}
