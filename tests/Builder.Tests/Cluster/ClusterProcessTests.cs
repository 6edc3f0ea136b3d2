using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Builder.Tests.Infrastructure;
using Builder.Tests.Runner;

namespace Builder.Tests.Cluster;

/// <summary>
/// Gateway nodes as separate processes on one real redis-server: one running build per project
/// across the nodes (409 from any node), cancel from any node, a node killed (kill -9) during a
/// build reported <c>build:failed</c> <c>INTERRUPTED</c> by another node within the lease time to
/// the viewers on the other nodes, and two users on two nodes answering one decision at once.
/// </summary>
public sealed class ClusterProcessTests
{
    private const int LeaseSeconds = 3;

    private static readonly Dictionary<string, string> s_settings = new()
    {
        ["Builder:Runner:BuildLeaseSeconds"] = LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Builder:Heartbeat:IntervalSeconds"] = "300",
    };

    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(30);

    private static async Task<ClusterNode[]> StartNodesAsync(RedisServer redis, int count)
    {
        var starting = Enumerable.Range(0, count).Select(_ => ClusterNode.StartAsync(redis.Configuration, s_settings)).ToList();
        try
        {
            return await Task.WhenAll(starting);
        }
        catch
        {
            foreach (var node in starting.Where(t => t.IsCompletedSuccessfully))
            {
                await node.Result.DisposeAsync();
            }

            throw;
        }
    }

    private static async Task<BuilderClient> ViewerAsync(ClusterNode node, string userId, params string[] projects)
    {
        var client = node.Client(userId, projects);
        await client.ConnectAsync();
        foreach (var project in projects)
        {
            await client.JoinAsync(project);
        }

        return client;
    }

    private static object SlowBuild => new { requirements = BuildApi.Shop, simulate = true, speed = 1 };

    private static async Task<string> StartBuildAsync(ClusterNode node, string projectId)
    {
        var (status, body) = await node.SendAsync(HttpMethod.Post, $"api/projects/{projectId}/builds", SlowBuild);
        Assert.True(status == HttpStatusCode.Accepted, $"build on {node.Url}: {(int)status} {body}");
        return body.GetProperty("buildId").GetString()!;
    }

    /// <summary>Reads <paramref name="viewer"/>'s events of <paramref name="type"/> until one of <paramref name="buildId"/>.</summary>
    private static async Task<JsonElement> NextOfBuildAsync(BuilderClient viewer, string type, string buildId)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var e = await viewer.NextAsync(type, s_wait - deadline.Elapsed);
            if (e.GetProperty("payload").GetProperty("buildId").GetString() == buildId)
            {
                return e;
            }
        }
    }

    [Fact]
    public async Task A_node_killed_during_a_build_is_reported_interrupted_on_the_other_nodes_and_builds_are_one_per_project_across_nodes()
    {
        await using var redis = await RedisServer.StartAsync();
        var nodes = await StartNodesAsync(redis, 3);
        try
        {
            var (a, b, c) = (nodes[0], nodes[1], nodes[2]);
            await using var bob = await ViewerAsync(b, "bob", "cl-kill", "cl-cancel");
            await using var carol = await ViewerAsync(c, "carol", "cl-kill", "cl-cancel");

            // cancel from another node than the one running the build
            var cancelId = await StartBuildAsync(a, "cl-cancel");
            await NextOfBuildAsync(bob, "build:started", cancelId);
            var (cancelStatus, cancelBody) = await c.SendAsync(HttpMethod.Post, $"api/projects/cl-cancel/builds/{cancelId}/cancel?by=carol");
            Assert.True(cancelStatus == HttpStatusCode.Accepted, $"{(int)cancelStatus} {cancelBody}");
            foreach (var viewer in new[] { bob, carol })
            {
                var cancelled = await NextOfBuildAsync(viewer, "build:cancelled", cancelId);
                Assert.Equal("carol", cancelled.GetProperty("payload").GetProperty("cancelledBy").GetString());
            }

            var (unknown, _) = await b.SendAsync(HttpMethod.Post, "api/projects/cl-cancel/builds/build-unknown/cancel");
            Assert.Equal(HttpStatusCode.NotFound, unknown);

            // one running build per project: node A runs it, nodes B and C answer 409 with its id
            var buildId = await StartBuildAsync(a, "cl-kill");
            await NextOfBuildAsync(bob, "build:started", buildId);
            await NextOfBuildAsync(carol, "build:started", buildId);
            foreach (var other in new[] { b, c })
            {
                var (status, body) = await other.SendAsync(HttpMethod.Post, "api/projects/cl-kill/builds", SlowBuild);
                Assert.Equal(HttpStatusCode.Conflict, status);
                Assert.Equal("BUILD_RUNNING", body.GetProperty("error").GetProperty("code").GetString());
                Assert.Equal(buildId, body.GetProperty("error").GetProperty("buildId").GetString());
            }

            // kill -9 the node running it: another node reports it within the lease time (plus one sweep)
            var watch = Stopwatch.StartNew();
            await a.KillAsync();
            foreach (var viewer in new[] { bob, carol })
            {
                var failed = await NextOfBuildAsync(viewer, "build:failed", buildId);
                Assert.Equal("INTERRUPTED", failed.GetProperty("payload").GetProperty("error").GetProperty("code").GetString());
            }

            var elapsed = watch.Elapsed;
            Assert.True(elapsed < TimeSpan.FromSeconds(LeaseSeconds + 4), $"INTERRUPTED after {elapsed.TotalSeconds:0.0} s (lease {LeaseSeconds} s)");

            // reported once: a marker from each live node arrives after any second report would have
            foreach (var node in new[] { b, c })
            {
                var (status, _) = await node.SendAsync(HttpMethod.Post, "api/projects/cl-kill/events", new { type = "agent:status:update", payload = new { agentId = "agent-marker", agentType = "ui", status = "idle" } });
                Assert.Equal(HttpStatusCode.Accepted, status);
            }

            foreach (var viewer in new[] { bob, carol })
            {
                for (var i = 0; i < 2; i++)
                {
                    await viewer.NextAsync("agent:status:update", s_wait);
                }

                await viewer.BarrierAsync();
                Assert.Equal(0, viewer.Pending("build:failed"));
            }

            // the project is free again, on any node
            var next = await StartBuildAsync(b, "cl-kill");
            await NextOfBuildAsync(carol, "build:started", next);
        }
        finally
        {
            foreach (var node in nodes)
            {
                await node.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Two_users_on_two_node_processes_answering_at_once_resolve_it_exactly_once_everywhere()
    {
        await using var redis = await RedisServer.StartAsync();
        var nodes = await StartNodesAsync(redis, 2);
        try
        {
            var (a, b) = (nodes[0], nodes[1]);
            await using var alice = await ViewerAsync(a, "alice", "cl-decide");
            await using var bob = await ViewerAsync(b, "bob", "cl-decide");
            for (var round = 0; round < 5; round++)
            {
                var (created, body) = await (round % 2 == 0 ? a : b).SendAsync(HttpMethod.Post, "api/projects/cl-decide/decisions", TestGateway.TwoOptionDecision());
                Assert.Equal(HttpStatusCode.Created, created);
                var decisionId = body.GetProperty("decisionId").GetString()!;
                await alice.NextAsync("user:decision:required", s_wait);
                await bob.NextAsync("user:decision:required", s_wait);

                var answers = await Task.WhenAll(
                    alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" }),
                    bob.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-2" }));
                Assert.Equal(1, answers.Count(x => x.GetProperty("ok").GetBoolean()));
                var winner = answers[0].GetProperty("ok").GetBoolean() ? "alice" : "bob";
                foreach (var viewer in new[] { alice, bob })
                {
                    var resolved = await viewer.NextAsync("user:decision:resolved", s_wait);
                    Assert.Equal(decisionId, resolved.GetProperty("payload").GetProperty("decisionId").GetString());
                    Assert.Equal(winner, resolved.GetProperty("payload").GetProperty("userId").GetString());
                }

                foreach (var node in nodes)
                {
                    var (status, read) = await node.SendAsync(HttpMethod.Get, $"api/decisions/{decisionId}");
                    Assert.Equal(HttpStatusCode.OK, status);
                    Assert.Equal(winner, read.GetProperty("resolution").GetProperty("userId").GetString());
                }
            }

            foreach (var node in nodes)
            {
                var (status, _) = await node.SendAsync(HttpMethod.Post, "api/projects/cl-decide/events", new { type = "agent:status:update", payload = new { agentId = "agent-marker", agentType = "ui", status = "idle" } });
                Assert.Equal(HttpStatusCode.Accepted, status);
            }

            foreach (var viewer in new[] { alice, bob })
            {
                for (var i = 0; i < nodes.Length; i++)
                {
                    await viewer.NextAsync("agent:status:update", s_wait);
                }

                await viewer.BarrierAsync();
                Assert.Equal(0, viewer.Pending("user:decision:resolved"));
            }
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
