using System.Globalization;
using System.Text.Json;
using StackExchange.Redis;

namespace Cluster.Tests;

/// <summary>Redis ingest (<c>builder:events</c>) on a cluster: each message logged once, not once per node.</summary>
public sealed class IngestTests
{
    [Fact]
    public async Task One_node_consumes_builder_events_and_another_takes_over_when_it_dies()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = (await GatewayNode.StartClusterAsync(redis.Configuration, settings: new Dictionary<string, string> { ["Builder:Cluster:IngestLeaseSeconds"] = "2" })).ToList();
        try
        {
            const string project = "ingest";
            await using var connection = await redis.ConnectAsync();
            var channel = RedisChannel.Literal("builder:events");
            var db = connection.GetDatabase();
            var wait = TimeSpan.FromSeconds(30);

            async Task<long> SubscribersAsync() => (long)((RedisResult[])(await db.ExecuteAsync("PUBSUB", "NUMSUB", "builder:events"))!)[1];
            async Task<long> LoggedAsync() => (long)await db.StreamLengthAsync("builder:{" + project + "}:log");
            async Task PublishAsync(int from, int count)
            {
                for (var i = from; i < from + count; i++)
                {
                    var message = JsonSerializer.Serialize(new { projectId = project, type = "agent:status:update", payload = new { agentId = "a1", agentType = "ui", status = "working", message = $"m{i}" } });
                    Assert.Equal(1, await connection.GetSubscriber().PublishAsync(channel, message)); // one consumer in the cluster
                }
            }

            await Deadline.UntilAsync(async () => await SubscribersAsync() == 1, wait, "one node subscribed to builder:events");
            await PublishAsync(0, 20);
            await Deadline.UntilAsync(async () => await LoggedAsync() == 20, wait, "20 messages logged");

            // the consumer dies (kill -9): another node takes the lease once it expires
            var leader = await LeaderAsync(nodes) ?? throw new InvalidOperationException("no node reports consuming builder:events");
            await leader.DisposeAsync();
            nodes.Remove(leader);
            await Deadline.UntilAsync(async () => await SubscribersAsync() == 1 && (await LeaderAsync(nodes)) is not null, wait, "another node consuming builder:events");
            await PublishAsync(20, 10);
            await Deadline.UntilAsync(async () => await LoggedAsync() == 30, wait, "30 messages logged");

            // each message once: 30 entries, messages m0..m29, seq 1..30
            var entries = await db.StreamRangeAsync("builder:{" + project + "}:log", "-", "+");
            var logged = entries.Select(e => JsonDocument.Parse((string)e.Values[0].Value!).RootElement).ToList();
            Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), logged.Select(e => e.GetProperty("seq").GetInt64()));
            Assert.Equal(Enumerable.Range(0, 30).Select(i => $"m{i}"), logged.Select(e => e.GetProperty("payload").GetProperty("message").GetString()));
        }
        finally
        {
            await ClusterLogTests.DisposeAllAsync([], nodes);
        }
    }

    /// <summary>The node whose /metrics says it consumes the ingest channel (null when none does).</summary>
    private static async Task<GatewayNode?> LeaderAsync(IEnumerable<GatewayNode> nodes)
    {
        GatewayNode? leader = null;
        foreach (var node in nodes)
        {
            var metrics = await node.Http.GetStringAsync("metrics");
            var line = metrics.Split('\n').FirstOrDefault(l => (l.StartsWith("builder_ingest_consuming ", StringComparison.Ordinal) || l.StartsWith("builder_ingest_consuming{", StringComparison.Ordinal)));
            if (line is not null && double.Parse(line.AsSpan(line.LastIndexOf(' ') + 1), CultureInfo.InvariantCulture) == 1)
            {
                Assert.Null(leader); // never two
                leader = node;
            }
        }

        return leader;
    }
}
