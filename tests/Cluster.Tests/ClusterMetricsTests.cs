using System.Net;
using Builder.Tests.Telemetry;

namespace Cluster.Tests;

/// <summary>/metrics on a cluster: the node that publishes counts the publication, the node whose viewer gets the event counts the delivery.</summary>
public sealed class ClusterMetricsTests
{
    [Fact]
    public async Task Publishing_and_delivering_nodes_each_count_their_part()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration, count: 2);
        try
        {
            const string project = "metered";
            await using var viewer = new Viewer(nodes[1].Url, GatewayNode.Token("watcher", project));
            await viewer.ConnectAsync();
            await viewer.JoinAsync(project);

            for (var i = 0; i < 3; i++)
            {
                using var response = await nodes[0].PublishAsync(project, "build:progress", $"{{\"currentPhase\":\"analyze\",\"phaseProgress\":{i * 10},\"overallProgress\":{i}}}");
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            }

            await Deadline.UntilAsync(() => viewer.ProjectEvents(project).Count == 3, Viewer.Wait, "3 events at the viewer on node 2");
            const string series = "{type=\"build:progress\"}";
            Dictionary<string, double> publisher = [], deliverer = [];
            await Deadline.UntilAsync(
                async () =>
                {
                    publisher = PrometheusText.Parse(await nodes[0].Http.GetStringAsync("metrics"));
                    deliverer = PrometheusText.Parse(await nodes[1].Http.GetStringAsync("metrics"));
                    return deliverer.GetValueOrDefault("builder_events_delivered_total" + series) == 3;
                },
                Viewer.Wait,
                "node 2 counting 3 deliveries");

            Assert.Equal(3, publisher["builder_events_published_total" + series]);
            Assert.False(deliverer.ContainsKey("builder_events_published_total" + series), "node 2 published nothing");
            Assert.Equal(3, deliverer["builder_events_delivery_latency_seconds_count" + series]);
            Assert.Equal(1, deliverer["builder_connected_sockets"]);
            Assert.Equal(0, publisher["builder_connected_sockets"]);

            // the Redis state both report: connected
            Assert.Equal(1, publisher["socketio_redis_connected"]);
            Assert.Equal(1, deliverer["socketio_redis_connected"]);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }
}
