namespace EngineIO;

/// <summary>
/// A session's send queue: many producers (broadcasts, handlers, timers), one consumer (the
/// drain or a poll), under the session's lock (held for a few instructions, almost never
/// contended: a broadcast touches each session's queue once).
/// <para>
/// One packet waiting, the common case, sits in a field. From the second on, the packets go to a
/// ring of 8 slots (from a small process-wide pool) that doubles while a burst backs up and goes
/// back to 8 once drained. The session keeps its ring while it is used: a connection under a stream
/// of broadcasts does not take and give back a ring per burst. The heartbeat hands back the ring of
/// a connection that has not needed it for a whole ping interval (<see cref="ReleaseIdleRing"/>), so
/// an idle connection holds no array here.
/// </para>
/// </summary>
internal struct SendQueue
{
    private const int InitialCapacity = 8;

    private EngineMessage? _single; // the packet, while it is the only one and no ring is held
    private EngineMessage[]? _ring;
    private int _head;
    private int _count;
    private bool _ringUsed; // the ring took a packet since the last ReleaseIdleRing

    /// <summary>Packets queued; read without the lock it is a hint.</summary>
    public readonly int Count => Volatile.Read(in _count);

    public readonly bool IsEmpty => Count == 0;

    /// <summary>Adds a packet unless <paramref name="max"/> are queued already. Call under the lock.</summary>
    public bool TryEnqueue(EngineMessage message, int max)
    {
        if (_count >= max)
        {
            return false;
        }

        if (_count == 0)
        {
            _single = message;
            Volatile.Write(ref _count, 1);
            return true;
        }

        if (_single is not null)
        {
            // a second packet: the queue moves to the ring
            _ring ??= RingPool.Rent();
            _head = 0;
            _ring[0] = _single;
            _single = null;
        }
        else if (_count == _ring!.Length)
        {
            var bigger = new EngineMessage[_ring.Length * 2];
            var tail = _ring.Length - _head;
            Array.Copy(_ring, _head, bigger, 0, tail);
            Array.Copy(_ring, 0, bigger, tail, _head);
            _ring = bigger;
            _head = 0;
        }

        _ring[(_head + _count) & (_ring.Length - 1)] = message;
        _ringUsed = true;
        Volatile.Write(ref _count, _count + 1);
        return true;
    }

    /// <summary>
    /// Gives the ring back when the queue is empty and the ring took no packet since the last call
    /// (the heartbeat calls this once per ping interval). Call under the lock.
    /// </summary>
    public void ReleaseIdleRing()
    {
        if (_ring is not null && _count == 0 && !_ringUsed)
        {
            RingPool.Return(_ring);
            _ring = null;
        }

        _ringUsed = false;
    }

    /// <summary>The next packet without removing it. Call under the lock.</summary>
    public readonly bool TryPeek(out EngineMessage message)
    {
        if (_count == 0)
        {
            message = null!;
            return false;
        }

        message = _single ?? _ring![_head];
        return true;
    }

    /// <summary>Removes the next packet. Call under the lock.</summary>
    public bool TryDequeue(out EngineMessage message)
    {
        if (_count == 0)
        {
            message = null!;
            return false;
        }

        if (_single is not null)
        {
            message = _single;
            _single = null;
            Volatile.Write(ref _count, 0);
            return true;
        }

        var ring = _ring!;
        message = ring[_head];
        ring[_head] = null!;
        _head = (_head + 1) & (ring.Length - 1);
        Volatile.Write(ref _count, _count - 1);
        if (_count == 0)
        {
            _head = 0;
            if (ring.Length > InitialCapacity)
            {
                _ring = RingPool.Rent(); // a burst's big ring goes; the session keeps a small one
            }
        }

        return true;
    }

    /// <summary>Empty 8-slot rings, shared by every session of the process.</summary>
    private static class RingPool
    {
        private static readonly Lock s_gate = new();
        private static readonly EngineMessage[]?[] s_rings = new EngineMessage[]?[256];
        private static int s_count;

        public static EngineMessage[] Rent()
        {
            lock (s_gate)
            {
                if (s_count > 0)
                {
                    var ring = s_rings[--s_count]!;
                    s_rings[s_count] = null;
                    return ring;
                }
            }

            return new EngineMessage[InitialCapacity];
        }

        public static void Return(EngineMessage[] ring)
        {
            lock (s_gate)
            {
                if (s_count < s_rings.Length)
                {
                    s_rings[s_count++] = ring;
                }
            }
        }
    }
}
