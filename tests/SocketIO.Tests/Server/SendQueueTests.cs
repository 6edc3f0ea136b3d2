using EngineIO;

namespace SocketIO.Tests.Server;

/// <summary>The session send queue: one packet in a field, a ring from the second on that grows while a burst backs up.</summary>
public sealed class SendQueueTests
{
    private static EngineMessage Packet(int i) => EngineMessage.Text(i.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static string Text(EngineMessage m) => System.Text.Encoding.UTF8.GetString(m.Data.Span);

    [Fact]
    public void Empty_HasNothingToPeekOrDequeue()
    {
        var queue = default(SendQueue);
        Assert.True(queue.IsEmpty);
        Assert.False(queue.TryPeek(out _));
        Assert.False(queue.TryDequeue(out _));
    }

    [Fact]
    public void Bound_RefusesThePacketOverMax_AndCountsWhatIsQueued()
    {
        var queue = default(SendQueue);
        for (var i = 0; i < 5; i++)
        {
            Assert.True(queue.TryEnqueue(Packet(i), max: 5));
        }

        Assert.False(queue.TryEnqueue(Packet(5), max: 5));
        Assert.Equal(5, queue.Count);
        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal("0", Text(first));
        Assert.True(queue.TryEnqueue(Packet(5), max: 5));
    }

    [Fact]
    public void GrowsAcrossTheWrapPoint_KeepingOrder()
    {
        var queue = default(SendQueue);
        // move the head into the middle of the first 8-slot ring, then fill past its capacity
        for (var i = 0; i < 5; i++)
        {
            queue.TryEnqueue(Packet(i), int.MaxValue);
        }

        for (var i = 0; i < 3; i++)
        {
            Assert.True(queue.TryDequeue(out var m));
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(m));
        }

        for (var i = 5; i < 40; i++)
        {
            queue.TryEnqueue(Packet(i), int.MaxValue);
        }

        for (var i = 3; i < 40; i++)
        {
            Assert.True(queue.TryPeek(out var peeked));
            Assert.True(queue.TryDequeue(out var m));
            Assert.Same(peeked, m);
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), Text(m));
        }

        Assert.True(queue.IsEmpty);
    }

    [Fact]
    public void ALonePacket_NeedsNoRing_ASmallBurstGivesItsRingBack_AGrownRingStaysUntilAHeartbeatFindsItUnused()
    {
        var queue = default(SendQueue);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(queue.TryEnqueue(Packet(i), max: 100));
            Assert.Equal(0, queue.RingCapacity);
            Assert.True(queue.TryDequeue(out _));
        }

        for (var i = 0; i < 5; i++)
        {
            queue.TryEnqueue(Packet(i), max: 100);
        }

        Assert.Equal(8, queue.RingCapacity);
        while (queue.TryDequeue(out _))
        {
        }

        Assert.Equal(0, queue.RingCapacity);

        for (var i = 0; i < 20; i++)
        {
            queue.TryEnqueue(Packet(i), max: 100);
        }

        Assert.Equal(32, queue.RingCapacity);
        while (queue.TryDequeue(out _))
        {
        }

        Assert.Equal(32, queue.RingCapacity); // kept for the next burst
        queue.ReleaseIdleRing();
        Assert.Equal(32, queue.RingCapacity); // it was used since the last heartbeat
        queue.ReleaseIdleRing();
        Assert.Equal(0, queue.RingCapacity);
    }

    [Fact]
    public void RandomOperations_BehaveLikeAQueue()
    {
        var random = new Random(1234);
        var queue = default(SendQueue);
        var model = new Queue<EngineMessage>();
        var next = 0;
        for (var step = 0; step < 20_000; step++)
        {
            if (random.Next(3) < 2)
            {
                var packet = Packet(next++);
                var accepted = queue.TryEnqueue(packet, max: 100, maxBytes: 300);
                var bytes = model.Sum(m => (long)m.Frame.Length);
                Assert.Equal(model.Count == 0 || (model.Count < 100 && bytes + packet.Frame.Length <= 300), accepted);
                if (accepted)
                {
                    model.Enqueue(packet);
                }
            }
            else if (random.Next(50) == 0)
            {
                queue.ReleaseIdleRing(); // a heartbeat: never loses or reorders a packet
            }
            else
            {
                var had = queue.TryDequeue(out var got);
                Assert.Equal(model.Count > 0, had);
                if (had)
                {
                    Assert.Same(model.Dequeue(), got);
                }
            }

            Assert.Equal(model.Count, queue.Count);
            Assert.Equal(model.Sum(m => (long)m.Frame.Length), queue.Bytes);
        }
    }

    [Fact]
    public void ByteBound_RefusesThePacketThatWouldGoOver_ButAFirstPacketAlwaysFits()
    {
        var queue = default(SendQueue);
        var big = EngineMessage.Text(new string('b', 99)); // 100 bytes with its type character
        Assert.True(queue.TryEnqueue(big, max: 10, maxBytes: 50)); // alone: it could never go otherwise
        Assert.Equal(100, queue.Bytes);
        Assert.False(queue.TryEnqueue(Packet(1), max: 10, maxBytes: 50));
        Assert.True(queue.TryDequeue(out _));
        Assert.Equal(0, queue.Bytes);
        for (var i = 0; i < 25; i++)
        {
            Assert.True(queue.TryEnqueue(Packet(i), max: 100, maxBytes: 65)); // "4" + one or two digits
        }

        Assert.Equal(10 * 2 + 15 * 3, queue.Bytes);
        Assert.False(queue.TryEnqueue(Packet(99), max: 100, maxBytes: 66));
        Assert.True(queue.TryEnqueue(Packet(9), max: 100, maxBytes: 67));
        Assert.Equal(67, queue.Bytes);
    }
}
