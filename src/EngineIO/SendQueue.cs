namespace EngineIO;

/// <summary>
/// A session's send queue: many producers (broadcasts, handlers, timers), one consumer (the
/// drain or a poll), under the session's lock (held for a few instructions, almost never
/// contended: a broadcast touches each session's queue once).
/// <para>
/// One packet waiting, the common case, sits in a field. From the second on, the packets go to a
/// ring of 8 slots from a small process-wide pool, given back when the queue empties. A ring that had
/// to grow (it doubles while a burst backs up) stays with the session while it is used: a connection
/// under a stream of bursts does not regrow one per burst (no allocation per recipient). The
/// heartbeat lets go of a grown ring unused for a whole ping interval (<see cref="ReleaseIdleRing"/>),
/// so an idle connection holds no array here.
/// </para>
/// </summary>
internal struct SendQueue
{
    private const int InitialCapacity = 8;

    private EngineMessage? _single; // the packet, while it is the only one and no ring is held
    private EngineMessage[]? _ring;
    private int _head;
    private int _count;
    private long _bytes; // the frames' lengths of the packets queued
    private bool _ringUsed; // the ring took a packet since the last ReleaseIdleRing

    /// <summary>Packets queued; read without the lock it is a hint.</summary>
    public readonly int Count => Volatile.Read(in _count);

    public readonly bool IsEmpty => Count == 0;

    /// <summary>Bytes queued (the packets' encoded lengths); read without the lock it is a hint.</summary>
    public readonly long Bytes => Volatile.Read(in _bytes);

    /// <summary>Slots of the ring held (0: none); for tests.</summary>
    internal readonly int RingCapacity => _ring?.Length ?? 0;

    /// <summary>
    /// Adds a packet unless <paramref name="max"/> are queued already, or it would take the bytes
    /// queued over <paramref name="maxBytes"/> (a first packet always fits). Call under the lock.
    /// </summary>
    public bool TryEnqueue(EngineMessage message, int max, long maxBytes = long.MaxValue)
    {
        var length = message.Frame.Length;
        if (_count >= max || (_count > 0 && _bytes + length > maxBytes))
        {
            return false;
        }

        Volatile.Write(ref _bytes, _bytes + length);
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
            if (_ring.Length == InitialCapacity)
            {
                RingPool.Return(_ring);
            }

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
            Volatile.Write(ref _bytes, 0);
            return true;
        }

        var ring = _ring!;
        message = ring[_head];
        ring[_head] = null!;
        _head = (_head + 1) & (ring.Length - 1);
        Volatile.Write(ref _count, _count - 1);
        Volatile.Write(ref _bytes, _bytes - message.Frame.Length);
        if (_count == 0)
        {
            _head = 0;
            if (ring.Length == InitialCapacity)
            {
                // a small ring goes back to the pool at once (taking it again costs no allocation);
                // a grown one stays until a heartbeat finds it unused
                RingPool.Return(ring);
                _ring = null;
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
