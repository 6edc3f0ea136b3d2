using System.Text.Json;
using Builder.Events;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Builder.Tests;

/// <summary>
/// <c>join-project</c> with <c>lastSeq</c> replays without holding the project's publish gate,
/// switches to live events without a gap or a duplicate, and is rate-limited per socket.
/// </summary>
public sealed class JoinReplayHardeningTests
{
    private static object Progress(long i) => new { currentPhase = "generate", phaseProgress = i % 101, overallProgress = i % 101, message = $"event {i}" };

    /// <summary>Build:progress seqs received until <paramref name="last"/>; every other event skipped.</summary>
    private static async Task<List<long>> ReceiveUntilAsync(BuilderClient client, long last)
    {
        var seqs = new List<long>();
        while (seqs.Count == 0 || seqs[^1] < last)
        {
            var e = await client.NextAnyAsync();
            if (e.Name == "build:progress")
            {
                var seq = e.Data.GetProperty("seq").GetInt64();
                Assert.Equal($"event {seq}", e.Data.GetProperty("payload").GetProperty("message").GetString());
                seqs.Add(seq);
                Assert.True(seqs.Count <= last + 1, "more events than published");
            }
        }

        return seqs;
    }

    [Fact]
    public async Task A_producer_publishes_while_a_member_replays_a_long_log_whose_read_is_stalled()
    {
        const int Logged = 3000;
        var log = new StallingEventLog(new InMemoryEventLog());
        await using var gateway = await TestGateway.StartAsync(services: s => s.Replace(ServiceDescriptor.Singleton<IEventLog>(log)));
        for (var i = 1; i <= Logged; i++)
        {
            await log.Inner.AppendAsync("p1", "build:progress", JsonSerializer.SerializeToElement(Progress(i)), i);
        }

        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        log.StallNextRead();
        var join = client.EmitWithAckAsync("join-project", new { projectId = "p1", lastSeq = 0 });
        try
        {
            await log.ReadStalled.WaitAsync(TestGateway.Wait);

            // the replay's read is stuck: a producer's publication must not wait for it
            var published = await gateway.PublishAsync("p1", "build:progress", Progress(Logged + 1)).WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(Logged + 1, published.GetProperty("seq").GetInt64());
        }
        finally
        {
            log.ReleaseRead();
        }

        var ack = await join;
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        Assert.Equal(Logged + 1, ack.GetProperty("seq").GetInt64());
        Assert.Equal(Logged + 1, ack.GetProperty("replayed").GetInt64());
        Assert.Equal(Enumerable.Range(1, Logged + 1).Select(i => (long)i), await ReceiveUntilAsync(client, Logged + 1));
        await gateway.PublishAsync("p1", "build:progress", Progress(Logged + 2));
        Assert.Equal([Logged + 2L], await ReceiveUntilAsync(client, Logged + 2));
    }

    [Fact]
    public async Task Replay_while_a_producer_publishes_delivers_every_event_once_in_order()
    {
        const int Logged = 1500;
        const int Live = 1500;
        await using var gateway = await TestGateway.StartAsync();
        var publisher = gateway.Services.GetRequiredService<EventPublisher>();
        for (var i = 1; i <= Logged; i++)
        {
            Assert.True((await publisher.PublishAsync("p1", "build:progress", Progress(i))).Ok);
        }

        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        using var started = new SemaphoreSlim(0);
        var producing = Task.Run(async () =>
        {
            for (var i = Logged + 1; i <= Logged + Live; i++)
            {
                Assert.True((await publisher.PublishAsync("p1", "build:progress", Progress(i))).Ok);
                if (i == Logged + 10)
                {
                    started.Release();
                }
            }
        });
        Assert.True(await started.WaitAsync(TestGateway.Wait));
        var ack = await client.EmitWithAckAsync("join-project", new { projectId = "p1", lastSeq = 0 });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        await producing.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(Enumerable.Range(1, Logged + Live).Select(i => (long)i), await ReceiveUntilAsync(client, Logged + Live));
        await client.BarrierAsync();
        Assert.DoesNotContain(client.DrainAll(), e => e.Name == "build:progress");
    }

    [Fact]
    public async Task Joins_over_the_per_socket_rate_get_RATE_LIMITED_until_the_bucket_refills()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Limits:JoinsPerMinute"] = "3");
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        for (var i = 0; i < 3; i++)
        {
            await client.JoinAsync("p1", lastSeq: 0);
        }

        var limited = await client.EmitWithAckAsync("join-project", new { projectId = "p1", lastSeq = 0 });
        Assert.False(limited.GetProperty("ok").GetBoolean(), limited.GetRawText());
        Assert.Equal("RATE_LIMITED", limited.GetProperty("error").GetProperty("code").GetString());
        var error = await client.NextAsync("error");
        Assert.Equal("RATE_LIMITED", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.True(client.Connected);

        // 3 per minute: one more after 20 s
        gateway.Time.Advance(TimeSpan.FromSeconds(21));
        await client.JoinAsync("p1", lastSeq: 0);
    }

    /// <summary>An event log whose next read, once armed, waits until released.</summary>
    private sealed class StallingEventLog(InMemoryEventLog inner) : IEventLog
    {
        private readonly TaskCompletionSource _stalled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _armed;

        public InMemoryEventLog Inner => inner;

        public Task ReadStalled => _stalled.Task;

        public void StallNextRead() => Volatile.Write(ref _armed, 1);

        public void ReleaseRead() => _released.TrySetResult();

        public ValueTask<EventEnvelope> AppendAsync(string projectId, string type, JsonElement payload, long timestamp, CancellationToken cancellationToken = default) =>
            inner.AppendAsync(projectId, type, payload, timestamp, cancellationToken);

        public async ValueTask<IReadOnlyList<EventEnvelope>> ReadAsync(string projectId, long afterSeq, int limit, CancellationToken cancellationToken = default)
        {
            if (Interlocked.Exchange(ref _armed, 0) == 1)
            {
                _stalled.TrySetResult();
                await _released.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
            }

            return await inner.ReadAsync(projectId, afterSeq, limit, cancellationToken);
        }

        public ValueTask<long> LatestSeqAsync(string projectId, CancellationToken cancellationToken = default) => inner.LatestSeqAsync(projectId, cancellationToken);

        public ValueTask<long> EarliestSeqAsync(string projectId, CancellationToken cancellationToken = default) => inner.EarliestSeqAsync(projectId, cancellationToken);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
