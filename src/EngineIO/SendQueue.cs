namespace EngineIO;

/// <summary>
/// A session's send queue: many producers (broadcasts, handlers, timers), one consumer (the
/// drain or a poll). A ring under a lock that is created with 8 slots on first use, doubles while
/// a burst backs up and goes back to 8 once drained, so an idle connection holds 88 bytes here
/// (a <see cref="System.Collections.Concurrent.ConcurrentQueue{T}"/> holds 768 and keeps the
/// segments a burst grew). The lock is held for a few instructions and is almost never contended:
/// a broadcast touches each session's queue once.
/// </summary>
internal struct SendQueue
{
    private const int InitialCapacity = 8;

    private EngineMessage[]? _ring;
    private int _head;
    private int _count;

    /// <summary>Packets queued; read without the lock it is a hint.</summary>
    public int Count => Volatile.Read(ref _count);

    public bool IsEmpty => Count == 0;

    /// <summary>Adds a packet unless <paramref name="max"/> are queued already. Call under the lock.</summary>
    public bool TryEnqueue(EngineMessage message, int max)
    {
        if (_count >= max)
        {
            return false;
        }

        if (_ring is null)
        {
            _ring = new EngineMessage[InitialCapacity];
        }
        else if (_count == _ring.Length)
        {
            var bigger = new EngineMessage[_ring.Length * 2];
            var tail = _ring.Length - _head;
            Array.Copy(_ring, _head, bigger, 0, tail);
            Array.Copy(_ring, 0, bigger, tail, _head);
            _ring = bigger;
            _head = 0;
        }

        _ring[(_head + _count) & (_ring.Length - 1)] = message;
        Volatile.Write(ref _count, _count + 1);
        return true;
    }

    /// <summary>The next packet without removing it. Call under the lock.</summary>
    public readonly bool TryPeek(out EngineMessage message)
    {
        if (_count == 0)
        {
            message = null!;
            return false;
        }

        message = _ring![_head];
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

        message = _ring![_head];
        _ring[_head] = null!;
        _head = (_head + 1) & (_ring.Length - 1);
        Volatile.Write(ref _count, _count - 1);
        if (_count == 0)
        {
            _head = 0;
            if (_ring.Length > InitialCapacity)
            {
                _ring = new EngineMessage[InitialCapacity];
            }
        }

        return true;
    }
}
