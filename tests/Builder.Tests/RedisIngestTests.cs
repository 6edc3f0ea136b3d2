using System.Diagnostics.Metrics;
using System.Text.Json;
using System.Threading.Channels;
using Builder.Hub;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Builder.Tests;

/// <summary>Producers outside the process publish on Redis channel builder:events; resolutions go out on builder:decisions.</summary>
public sealed class RedisIngestTests
{
    [Fact]
    public async Task Events_published_on_redis_reach_the_room_through_the_same_validation_and_log()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Redis:Configuration"] = redis.Configuration;
            s["Builder:Cluster:Enabled"] = "false"; // a single node that takes Redis ingest
        });
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");

        var subscriber = redis.Connection.GetSubscriber();
        var message = JsonSerializer.Serialize(new
        {
            projectId = "p1",
            type = "agent:status:update",
            payload = new { agentId = "agent-9", agentType = "backend", status = "working", currentTask = "Generating API", progress = 40 },
        });

        // the gateway subscribes during start-up; a publication reaching no subscriber returns 0
        Assert.True(await subscriber.PublishAsync(RedisChannel.Literal("builder:events"), message) >= 1);
        var update = await client.NextAsync("agent:status:update");
        Assert.Equal("agent:status:update", update.GetProperty("type").GetString());
        Assert.Equal("p1", update.GetProperty("projectId").GetString());
        Assert.Equal(1, update.GetProperty("seq").GetInt64());
        Assert.Equal(40, update.GetProperty("payload").GetProperty("progress").GetInt32());
    }

    [Fact]
    public async Task A_batch_message_on_redis_is_published_all_or_none_in_order()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Redis:Configuration"] = redis.Configuration;
            s["Builder:Cluster:Enabled"] = "false";
        });
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        using var counts = new CounterSums(gateway.Services.GetRequiredService<GatewayMetrics>());
        var subscriber = redis.Connection.GetSubscriber();
        var channel = RedisChannel.Literal("builder:events");
        object Status(int progress) => new { type = "agent:status:update", payload = new { agentId = "a", agentType = "ui", status = "working", progress } };

        // one invalid event (progress 101) refuses its whole message; the next message is published whole, in order
        await subscriber.PublishAsync(channel, JsonSerializer.Serialize(new { projectId = "p1", events = new[] { Status(1), Status(101), Status(3) } }));
        await subscriber.PublishAsync(channel, JsonSerializer.Serialize(new { projectId = "p1", events = Enumerable.Range(10, 20).Select(Status).ToArray() }));
        await subscriber.PublishAsync(channel, JsonSerializer.Serialize(new { projectId = "p1", type = "agent:status:update", payload = new { agentId = "a", agentType = "ui", status = "working", progress = 99 } }));

        for (var i = 0; i < 21; i++)
        {
            var update = await client.NextAsync("agent:status:update");
            Assert.Equal(i + 1, update.GetProperty("seq").GetInt64());
            Assert.Equal(i < 20 ? 10 + i : 99, update.GetProperty("payload").GetProperty("progress").GetInt32());
        }

        Assert.Equal(1, counts.Read("builder.redis.rejected"));

        // counted once the publisher has answered, which may come just after the delivery
        await global::Cluster.Tests.Deadline.UntilAsync(() => counts.Read("builder.redis.events") == 21, TestGateway.Wait, "21 events counted");
    }

    /// <summary>The sums of this gateway's counters (not another test's gateway), by instrument name, from the moment it is made.</summary>
    private sealed class CounterSums : IDisposable
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _sums = new(StringComparer.Ordinal);
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();

        public CounterSums(GatewayMetrics metrics)
        {
            _listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == metrics.Meter)
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => _sums.AddOrUpdate(instrument.Name, value, (_, sum) => sum + value));
            _listener.Start();
        }

        public long Read(string name)
        {
            _listener.RecordObservableInstruments();
            return _sums.GetValueOrDefault(name);
        }

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task A_bad_message_on_redis_is_counted_and_never_fatal()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Redis:Configuration"] = redis.Configuration;
            s["Builder:Cluster:Enabled"] = "false"; // a single node that takes Redis ingest
        });
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        // the rejections as this gateway's meter (not another test's gateway) counts them
        using var counts = new CounterSums(gateway.Services.GetRequiredService<GatewayMetrics>());
        var subscriber = redis.Connection.GetSubscriber();
        var channel = RedisChannel.Literal("builder:events");

        await subscriber.PublishAsync(channel, "{not json");
        await subscriber.PublishAsync(channel, JsonSerializer.Serialize(new { projectId = "p1", type = "agent:status:update", payload = new { agentId = "a", agentType = "robot", status = "working" } }));
        await subscriber.PublishAsync(channel, JsonSerializer.Serialize(new { type = "build:progress" }));
        await subscriber.PublishAsync(channel, JsonSerializer.Serialize(new { projectId = "p1", type = "build:started", payload = new { estimatedDuration = 10, phases = new[] { "analyze" } } }));

        // Redis delivers one subscription's messages in order: the valid one comes after the three bad ones
        var started = await client.NextAsync("build:started");
        Assert.Equal(1, started.GetProperty("seq").GetInt64());
        Assert.Equal(0, client.Pending("agent:status:update"));
        Assert.Equal(3, counts.Read("builder.redis.rejected"));
    }

    [Fact]
    public async Task Decision_resolutions_are_published_on_builder_decisions()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Redis:Configuration"] = redis.Configuration;
            s["Builder:Cluster:Enabled"] = "false"; // a single node that takes Redis ingest
        });
        var resolutions = Channel.CreateUnbounded<string>();
        var queue = await redis.Connection.GetSubscriber().SubscribeAsync(RedisChannel.Literal("builder:decisions"));
        queue.OnMessage(m => resolutions.Writer.TryWrite((string)m.Message!));

        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision());
        await client.NextAsync("user:decision:required");
        await client.EmitAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2", feedback = "Looks great!" });

        var published = JsonDocument.Parse(await resolutions.Reader.ReadAsync().AsTask().WaitAsync(TestGateway.Wait)).RootElement;
        Assert.Equal("p1", published.GetProperty("projectId").GetString());
        Assert.Equal(decisionId, published.GetProperty("decisionId").GetString());
        Assert.Equal("option-2", published.GetProperty("selectedOptionId").GetString());
        Assert.Equal("user", published.GetProperty("resolvedBy").GetString());
        Assert.Equal("alice", published.GetProperty("userId").GetString());
        Assert.Equal("Looks great!", published.GetProperty("feedback").GetString());
    }
}
