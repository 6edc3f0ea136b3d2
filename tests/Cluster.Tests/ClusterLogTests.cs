using System.Net;
using System.Text.Json;
using StackExchange.Redis;

namespace Cluster.Tests;

/// <summary>
/// Three gateway processes on one real redis-server: one ordered log per project, delivered to the
/// viewers of every node once and in seq order, replayed from any node.
/// </summary>
public sealed class ClusterLogTests
{
    private const string Type = "agent:status:update";

    private static string Payload(int producer, int i) =>
        JsonSerializer.Serialize(new { agentId = $"agent-{producer}", agentType = "ui", status = "working", progress = i % 100, message = $"p{producer}-{i}" });

    private static async Task<long> PublishOkAsync(GatewayNode node, string projectId, int producer, int i)
    {
        using var response = await node.PublishAsync(projectId, Type, Payload(producer, i));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, $"{response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("seq").GetInt64();
    }

    [Fact]
    public async Task Viewers_on_three_nodes_see_every_event_once_in_seq_order_while_producers_publish_on_all_three()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration);
        var viewers = new List<Viewer>();
        try
        {
            const string project = "shop";
            const int perProducer = 60;

            // one viewer per node, each another user; the last joiner counts the users of every node
            var members = new List<int>();
            for (var n = 0; n < nodes.Length; n++)
            {
                var viewer = new Viewer(nodes[n].Url, GatewayNode.Token($"user-{n}", project));
                viewers.Add(viewer);
                await viewer.ConnectAsync();
                members.Add((await viewer.JoinAsync(project)).GetProperty("members").GetInt32());
            }

            Assert.Equal([1, 2, 3], members);

            // a second tab of user-0 on node 3 is not another member
            var tab = new Viewer(nodes[2].Url, GatewayNode.Token("user-0", project));
            viewers.Add(tab);
            await tab.ConnectAsync();
            Assert.Equal(3, (await tab.JoinAsync(project)).GetProperty("members").GetInt32());

            // a producer on every node at once
            var producers = nodes.Select((node, p) => Task.Run(async () =>
            {
                var seqs = new List<long>();
                for (var i = 0; i < perProducer; i++)
                {
                    seqs.Add(await PublishOkAsync(node, project, p, i));
                }

                return seqs;
            })).ToArray();
            var acknowledged = (await Task.WhenAll(producers)).SelectMany(s => s).Order().ToList();
            var total = perProducer * nodes.Length;

            // seq assigned across nodes: 1..total, no gap, no duplicate
            Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), acknowledged);

            foreach (var viewer in viewers)
            {
                await Deadline.UntilAsync(() => viewer.ProjectEvents(project).Count >= total, Viewer.Wait, $"{total} events at every viewer");
            }

            // let anything extra (a duplicate) arrive before counting: a round trip per viewer
            foreach (var viewer in viewers)
            {
                await viewer.BarrierAsync();
            }

            List<string>? first = null;
            foreach (var viewer in viewers)
            {
                var events = viewer.ProjectEvents(project);
                Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), events.Select(e => e.GetProperty("seq").GetInt64()));
                var ids = events.Select(e => e.GetProperty("eventId").GetString()!).ToList();
                Assert.Equal(total, ids.Distinct().Count());
                first ??= ids;
                Assert.Equal(first, ids); // the same events in the same order on every node
            }
        }
        finally
        {
            await DisposeAllAsync(viewers, nodes);
        }
    }

    [Fact]
    public async Task A_viewer_replays_by_lastSeq_on_another_node_than_the_one_it_saw_the_events_on()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration);
        var viewers = new List<Viewer>();
        try
        {
            const string project = "replay";
            var first = new Viewer(nodes[0].Url, GatewayNode.Token("alice", project));
            viewers.Add(first);
            await first.ConnectAsync();
            await first.JoinAsync(project);
            for (var i = 0; i < 10; i++)
            {
                await PublishOkAsync(nodes[i % 3], project, 0, i);
            }

            await Deadline.UntilAsync(() => first.ProjectEvents(project).Count == 10, Viewer.Wait, "10 events on node 1");
            var lastSeen = first.ProjectEvents(project)[^1].GetProperty("seq").GetInt64();
            Assert.Equal(10, lastSeen);
            await first.DisposeAsync();

            // while the viewer is away, node 3 takes more events
            for (var i = 10; i < 25; i++)
            {
                await PublishOkAsync(nodes[2], project, 1, i);
            }

            // it comes back on node 2 with the last seq it saw
            var again = new Viewer(nodes[1].Url, GatewayNode.Token("alice", project));
            viewers.Add(again);
            await again.ConnectAsync();
            var ack = await again.JoinAsync(project, lastSeq: lastSeen);
            Assert.Equal(15, ack.GetProperty("replayed").GetInt64());
            Assert.Equal(25, ack.GetProperty("seq").GetInt64());

            // and live events follow the replay without a gap or a duplicate
            await PublishOkAsync(nodes[0], project, 2, 25);
            await Deadline.UntilAsync(() => again.ProjectEvents(project).Count >= 16, Viewer.Wait, "the replay and one live event");
            await again.BarrierAsync();
            Assert.Equal(Enumerable.Range(11, 16).Select(i => (long)i), again.ProjectEvents(project).Select(e => e.GetProperty("seq").GetInt64()));
            Assert.DoesNotContain(again.Events, e => e.Name == "project:snapshot");
        }
        finally
        {
            await DisposeAllAsync(viewers, nodes);
        }
    }

    [Fact]
    public async Task A_lastSeq_older_than_the_kept_events_gets_a_snapshot()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration, 2, new Dictionary<string, string> { ["Builder:Store:MaxEventsPerProject"] = "100" });
        var viewers = new List<Viewer>();
        try
        {
            const string project = "trimmed";
            for (var i = 0; i < 130; i++)
            {
                await PublishOkAsync(nodes[i % 2], project, 0, i);
            }

            // the Stream keeps the last 100: seq 31..130
            await using var connection = await redis.ConnectAsync();
            Assert.Equal(100, await connection.GetDatabase().StreamLengthAsync("builder:{" + project + "}:log"));

            var viewer = new Viewer(nodes[1].Url, GatewayNode.Token("bob", project));
            viewers.Add(viewer);
            await viewer.ConnectAsync();
            var ack = await viewer.JoinAsync(project, lastSeq: 5);
            Assert.Equal(130, ack.GetProperty("seq").GetInt64());
            Assert.False(ack.TryGetProperty("replayed", out _));
            Assert.Contains(viewer.Events, e => e.Name == "project:snapshot");
            Assert.Empty(viewer.ProjectEvents(project));

            // a lastSeq still kept is replayed
            var kept = new Viewer(nodes[0].Url, GatewayNode.Token("bob", project));
            viewers.Add(kept);
            await kept.ConnectAsync();
            Assert.Equal(10, (await kept.JoinAsync(project, lastSeq: 120)).GetProperty("replayed").GetInt64());
            Assert.Equal(Enumerable.Range(121, 10).Select(i => (long)i), kept.ProjectEvents(project).Select(e => e.GetProperty("seq").GetInt64()));
        }
        finally
        {
            await DisposeAllAsync(viewers, nodes);
        }
    }

    internal static async Task DisposeAllAsync(IEnumerable<Viewer> viewers, IEnumerable<GatewayNode> nodes)
    {
        foreach (var viewer in viewers)
        {
            await viewer.DisposeAsync();
        }

        foreach (var node in nodes)
        {
            await node.DisposeAsync();
        }
    }
}
