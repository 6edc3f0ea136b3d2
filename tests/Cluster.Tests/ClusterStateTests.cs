using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using SocketIOClient;
using Client = SocketIOClient.SocketIO;

namespace Cluster.Tests;

/// <summary>
/// The decisions and the builds of three (or two) gateway processes on one real redis-server: one
/// running build per project across the nodes (409 from any node), cancel from any node, a node
/// killed (kill -9) during a build reported <c>build:failed</c> <c>INTERRUPTED</c> by another node
/// within the lease time to the viewers on the other nodes, and two users on two nodes answering
/// one decision at once (exactly one wins, everywhere).
/// </summary>
public sealed class ClusterStateTests
{
    private const int LeaseSeconds = 3;

    private static readonly Dictionary<string, string> s_settings = new()
    {
        ["Builder:Runner:BuildLeaseSeconds"] = LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Builder:Heartbeat:IntervalSeconds"] = "300",
    };

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    private static readonly object s_slowBuild = new { requirements = "An online shop with users, products and orders", simulate = true, speed = 1 };

    private static readonly object s_decision = new
    {
        agentId = "agent-1",
        question = "Which layout style do you prefer?",
        options = new object[] { new { id = "option-1", label = "Modern Dashboard" }, new { id = "option-2", label = "Classic Table" } },
        timeout = 300,
    };

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(GatewayNode node, HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: s_json);
        }

        request.Headers.Add("X-Api-Key", GatewayNode.ApiKey);
        using var response = await node.Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private static async Task<Viewer> ViewerAsync(GatewayNode node, string userId, params string[] projects)
    {
        var viewer = new Viewer(node.Url, GatewayNode.Token(userId, projects));
        await viewer.ConnectAsync();
        foreach (var project in projects)
        {
            await viewer.JoinAsync(project);
        }

        return viewer;
    }

    private static bool Is(JsonElement e, string key, string value) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("payload", out var p) && p.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() == value;

    private static List<JsonElement> Received(Viewer viewer, string name, string key, string value) =>
        [.. viewer.Events.Where(e => e.Name == name && Is(e.Data, key, value)).Select(e => e.Data)];

    private static async Task<JsonElement> WaitForAsync(Viewer viewer, string name, string key, string value)
    {
        await Deadline.UntilAsync(() => Received(viewer, name, key, value).Count > 0, Viewer.Wait, $"{name} with {key} {value}");
        return Received(viewer, name, key, value)[0];
    }

    private static async Task<string> StartBuildAsync(GatewayNode node, string projectId)
    {
        var (status, body) = await SendAsync(node, HttpMethod.Post, $"api/projects/{projectId}/builds", s_slowBuild);
        Assert.True(status == HttpStatusCode.Accepted, $"build on {node.Url}: {(int)status} {body}");
        return body.GetProperty("buildId").GetString()!;
    }

    /// <summary>A marker published on each node, then each viewer's barrier: anything published before has arrived.</summary>
    private static async Task SettleAsync(string projectId, IEnumerable<GatewayNode> nodes, params Viewer[] viewers)
    {
        var markers = new List<string>();
        foreach (var node in nodes)
        {
            var marker = "marker-" + Guid.NewGuid().ToString("N")[..8];
            using var response = await node.PublishAsync(projectId, "agent:status:update", JsonSerializer.Serialize(new { agentId = marker, agentType = "ui", status = "idle" }));
            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            markers.Add(marker);
        }

        foreach (var viewer in viewers)
        {
            foreach (var marker in markers)
            {
                await WaitForAsync(viewer, "agent:status:update", "agentId", marker);
            }

            await viewer.BarrierAsync();
        }
    }

    [Fact]
    public async Task A_node_killed_during_a_build_is_reported_interrupted_on_the_other_nodes_and_builds_are_one_per_project_across_nodes()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration, 3, s_settings);
        try
        {
            var (a, b, c) = (nodes[0], nodes[1], nodes[2]);
            await using var bob = await ViewerAsync(b, "bob", "cs-kill", "cs-cancel");
            await using var carol = await ViewerAsync(c, "carol", "cs-kill", "cs-cancel");

            // cancel on another node than the one running the build
            var cancelId = await StartBuildAsync(a, "cs-cancel");
            await WaitForAsync(bob, "build:started", "buildId", cancelId);
            var (cancelStatus, cancelBody) = await SendAsync(c, HttpMethod.Post, $"api/projects/cs-cancel/builds/{cancelId}/cancel?by=carol");
            Assert.True(cancelStatus == HttpStatusCode.Accepted, $"{(int)cancelStatus} {cancelBody}");
            foreach (var viewer in new[] { bob, carol })
            {
                var cancelled = await WaitForAsync(viewer, "build:cancelled", "buildId", cancelId);
                Assert.Equal("carol", cancelled.GetProperty("payload").GetProperty("cancelledBy").GetString());
            }

            var (unknown, _) = await SendAsync(b, HttpMethod.Post, "api/projects/cs-cancel/builds/build-unknown/cancel");
            Assert.Equal(HttpStatusCode.NotFound, unknown);

            // one running build per project: node A runs it, nodes B and C answer 409 with its id
            var buildId = await StartBuildAsync(a, "cs-kill");
            await WaitForAsync(bob, "build:started", "buildId", buildId);
            await WaitForAsync(carol, "build:started", "buildId", buildId);
            foreach (var other in new[] { b, c })
            {
                var (status, body) = await SendAsync(other, HttpMethod.Post, "api/projects/cs-kill/builds", s_slowBuild);
                Assert.Equal(HttpStatusCode.Conflict, status);
                Assert.Equal("BUILD_RUNNING", body.GetProperty("error").GetProperty("code").GetString());
                Assert.Equal(buildId, body.GetProperty("error").GetProperty("buildId").GetString());
            }

            // kill -9 the node running it (Process.Kill is SIGKILL): another node reports it within
            // the lease time plus one sweep (a third of the lease), with slack for a loaded machine
            var watch = Stopwatch.StartNew();
            await a.DisposeAsync();
            nodes = [b, c];
            foreach (var viewer in new[] { bob, carol })
            {
                var failed = await WaitForAsync(viewer, "build:failed", "buildId", buildId);
                Assert.Equal("INTERRUPTED", failed.GetProperty("payload").GetProperty("error").GetProperty("code").GetString());
            }

            var elapsed = watch.Elapsed;
            Assert.True(elapsed < TimeSpan.FromSeconds(LeaseSeconds + 4), $"INTERRUPTED after {elapsed.TotalSeconds:0.0} s (lease {LeaseSeconds} s)");

            // reported once, by one node
            await SettleAsync("cs-kill", [b, c], bob, carol);
            Assert.Single(Received(bob, "build:failed", "buildId", buildId));
            Assert.Single(Received(carol, "build:failed", "buildId", buildId));

            // the project is free again, on any node
            var next = await StartBuildAsync(b, "cs-kill");
            await WaitForAsync(carol, "build:started", "buildId", next);
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
    public async Task Two_users_on_two_nodes_answering_one_decision_at_once_resolve_it_exactly_once_everywhere()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration, 2, s_settings);
        try
        {
            var (a, b) = (nodes[0], nodes[1]);
            await using var aliceView = await ViewerAsync(a, "alice", "cs-decide");
            await using var bobView = await ViewerAsync(b, "bob", "cs-decide");
            using var alice = await AnswererAsync(a, "alice", "cs-decide");
            using var bob = await AnswererAsync(b, "bob", "cs-decide");
            var decisions = new List<string>();
            for (var round = 0; round < 5; round++)
            {
                var (created, body) = await SendAsync(round % 2 == 0 ? a : b, HttpMethod.Post, "api/projects/cs-decide/decisions", s_decision);
                Assert.Equal(HttpStatusCode.Created, created);
                var decisionId = body.GetProperty("decisionId").GetString()!;
                decisions.Add(decisionId);
                await WaitForAsync(aliceView, "user:decision:required", "decisionId", decisionId);
                await WaitForAsync(bobView, "user:decision:required", "decisionId", decisionId);

                var answers = await Task.WhenAll(AnswerAsync(alice, decisionId, "option-1"), AnswerAsync(bob, decisionId, "option-2"));
                Assert.Equal(1, answers.Count(x => x.GetProperty("ok").GetBoolean()));
                var aliceWon = answers[0].GetProperty("ok").GetBoolean();
                Assert.Equal("DECISION_ALREADY_RESOLVED", answers[aliceWon ? 1 : 0].GetProperty("error").GetProperty("code").GetString());
                foreach (var viewer in new[] { aliceView, bobView })
                {
                    var resolved = await WaitForAsync(viewer, "user:decision:resolved", "decisionId", decisionId);
                    Assert.Equal(aliceWon ? "alice" : "bob", resolved.GetProperty("payload").GetProperty("userId").GetString());
                    Assert.Equal(aliceWon ? "option-1" : "option-2", resolved.GetProperty("payload").GetProperty("selectedOptionId").GetString());
                }

                foreach (var node in nodes)
                {
                    var (status, read) = await SendAsync(node, HttpMethod.Get, $"api/decisions/{decisionId}");
                    Assert.Equal(HttpStatusCode.OK, status);
                    Assert.Equal(aliceWon ? "alice" : "bob", read.GetProperty("resolution").GetProperty("userId").GetString());
                }
            }

            // each resolution once for each viewer, in the same log position on both nodes
            await SettleAsync("cs-decide", nodes, aliceView, bobView);
            foreach (var decisionId in decisions)
            {
                var seqs = new[] { aliceView, bobView }.Select(v => Assert.Single(Received(v, "user:decision:resolved", "decisionId", decisionId)).GetProperty("seq").GetInt64()).ToList();
                Assert.Equal(seqs[0], seqs[1]);
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

    private static async Task<Client> AnswererAsync(GatewayNode node, string userId, string projectId)
    {
        var client = new Client(new Uri(node.Url, "/builder"), new SocketIOOptions
        {
            EIO = 4,
            Transport = SocketIOClient.Transport.TransportProtocol.WebSocket,
            AutoUpgrade = false,
            Reconnection = false,
            ConnectionTimeout = Viewer.Wait,
            Auth = new { token = GatewayNode.Token(userId, projectId) },
        });
        await client.ConnectAsync().WaitAsync(Viewer.Wait);
        return client;
    }

    private static async Task<JsonElement> AnswerAsync(Client client, string decisionId, string optionId)
    {
        var ack = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await client.EmitAsync("user:decision:response", response => ack.TrySetResult(response.GetValue(0).Clone()), new { decisionId, selectedOptionId = optionId }).WaitAsync(Viewer.Wait);
        return await ack.Task.WaitAsync(Viewer.Wait);
    }
}
