using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>Replay after reconnect (join with <c>lastSeq</c>) and snapshots for late joiners.</summary>
public sealed class ReplayTests
{
    private const int Before = 10;
    private const int MaxPublished = 5000;
    private const int AfterRejoin = 30;

    private static object Progress(int i) => new { currentPhase = "generate", phaseProgress = i % 101, overallProgress = i % 101, message = $"event {i}" };

    /// <summary>Takes build:progress events until <paramref name="stop"/> says so; returns their seqs in arrival order.</summary>
    private static async Task<List<long>> ReceiveAsync(BuilderClient client, List<long> seqs, Func<long, bool> stop)
    {
        while (true)
        {
            var e = await client.NextAnyAsync();
            if (e.Name != "build:progress")
            {
                continue;
            }

            var seq = e.Data.GetProperty("seq").GetInt64();
            Assert.Equal($"event {seq}", e.Data.GetProperty("payload").GetProperty("message").GetString());
            seqs.Add(seq);
            if (stop(seq))
            {
                return seqs;
            }
        }
    }

    [Fact]
    public async Task Rejoining_with_lastSeq_while_events_flow_loses_and_repeats_nothing()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        for (var i = 1; i <= Before; i++)
        {
            await gateway.PublishAsync("p1", "build:progress", Progress(i));
        }

        var token = gateway.Token("alice", ["p1"]);
        var first = gateway.Client(token);
        await first.ConnectAsync();
        first.DrainAll();

        // a producer keeps publishing during both joins and the disconnect, and a little after the rejoin
        var rejoined = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var publisher = Task.Run(async () =>
        {
            var after = 0;
            for (var i = Before + 1; i <= MaxPublished; i++)
            {
                await gateway.PublishAsync("p1", "build:progress", Progress(i));
                if (rejoined.Task.IsCompleted && ++after >= AfterRejoin)
                {
                    return i;
                }
            }

            return MaxPublished;
        });

        var seen = new List<long>();
        const long firstLastSeq = 3;
        var ack = await first.EmitWithAckAsync("join-project", new { projectId = "p1", lastSeq = firstLastSeq });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        Assert.Equal(ack.GetProperty("seq").GetInt64() - firstLastSeq, ack.GetProperty("replayed").GetInt64());

        // a replay, not a snapshot
        await ReceiveAsync(first, seen, seq => seq >= Before + 15);
        await first.DisposeAsync();
        foreach (var e in first.DrainAll().Where(e => e.Name == "build:progress"))
        {
            seen.Add(e.Data.GetProperty("seq").GetInt64());
        }

        Assert.Equal(0, first.Pending("project:snapshot"));
        var lastSeen = seen[^1];
        Assert.False(publisher.IsCompleted, "the publisher finished before the reconnect");

        await using var second = gateway.Client(token);
        await second.ConnectAsync();
        var rejoin = await second.EmitWithAckAsync("join-project", new { projectId = "p1", lastSeq = lastSeen });
        Assert.True(rejoin.GetProperty("ok").GetBoolean(), rejoin.GetRawText());
        rejoined.SetResult();
        var total = await publisher.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(lastSeen < total);
        await ReceiveAsync(second, seen, seq => seq >= total);

        Assert.Equal(Enumerable.Range((int)firstLastSeq + 1, total - (int)firstLastSeq).Select(i => (long)i), seen);
        await second.BarrierAsync();
        Assert.Equal(0, second.Pending("project:snapshot"));
        Assert.DoesNotContain(second.DrainAll(), e => e.Name == "build:progress");
    }

    [Fact]
    public async Task Join_with_lastSeq_at_the_head_replays_nothing_and_then_goes_live()
    {
        await using var gateway = await TestGateway.StartAsync();
        for (var i = 1; i <= 3; i++)
        {
            await gateway.PublishAsync("p1", "build:progress", Progress(i));
        }

        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        var ack = await client.JoinAsync("p1", lastSeq: 3);
        Assert.Equal(3, ack.GetProperty("seq").GetInt64());
        Assert.Equal(0, ack.GetProperty("replayed").GetInt64());
        await gateway.PublishAsync("p1", "build:progress", Progress(4));
        var next = await client.NextAsync("build:progress");
        Assert.Equal(4, next.GetProperty("seq").GetInt64());
        await client.BarrierAsync();
        Assert.Equal(0, client.Pending("project:snapshot"));
        Assert.Equal(0, client.Pending("build:progress"));
    }

    [Fact]
    public async Task Late_joiner_gets_a_snapshot_of_agents_build_decisions_and_deployment()
    {
        await using var gateway = await TestGateway.StartAsync();
        var start = gateway.Time.GetUtcNow().ToUnixTimeMilliseconds();
        await gateway.PublishAsync("p1", "build:started", new { estimatedDuration = 120, phases = new[] { "analyze", "design", "generate", "validate" } });
        await gateway.PublishAsync("p1", "agent:status:update", new { agentId = "ui-1", agentType = "ui", status = "working", currentTask = "Layout", progress = 10, message = "m1" });
        await gateway.PublishAsync("p1", "agent:status:update", new { agentId = "db-1", agentType = "database", status = "working", progress = 20 });
        await gateway.PublishAsync("p1", "agent:status:update", new { agentId = "ui-1", agentType = "ui", status = "waiting", currentTask = "Layout", progress = 65, message = "Selected 5 components from library" });
        await gateway.PublishAsync("p1", "agent:output", new { agentId = "db-1", agentType = "database", output = new { migrations = new[] { "CREATE TABLE users" } }, summary = "Created 3 data tables" });
        await gateway.PublishAsync("p1", "build:progress", new { currentPhase = "design", phaseProgress = 75, overallProgress = 45, message = "Database schema design completed", estimatedTimeRemaining = 75 });
        await gateway.PublishAsync("p1", "deployment:progress", new { deploymentId = "dep-1", environment = "test", stage = "building", progress = 40, message = "Building Docker image..." });
        gateway.Time.Advance(TimeSpan.FromSeconds(20));
        var decisionId = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 300));
        var answered = await gateway.CreateDecisionAsync("p1", TestGateway.TwoOptionDecision(timeout: 300));
        gateway.Time.Advance(TimeSpan.FromSeconds(30));

        await using var helper = gateway.Client(gateway.Token("bob", ["p1"]));
        await helper.ConnectAsync();
        var answer = await helper.EmitWithAckAsync("user:decision:response", new { decisionId = answered, selectedOptionId = "option-1" });
        Assert.True(answer.GetProperty("ok").GetBoolean());

        await using var late = gateway.Client(gateway.Token("alice", ["p1"]));
        await late.ConnectAsync();
        var joined = await late.JoinAsync("p1");
        Assert.Equal(10, joined.GetProperty("seq").GetInt64());
        var snapshot = await late.NextAsync("project:snapshot");

        Assert.Equal("p1", snapshot.GetProperty("projectId").GetString());
        Assert.Equal(10, snapshot.GetProperty("seq").GetInt64());

        var agents = snapshot.GetProperty("agents").EnumerateArray().ToDictionary(a => a.GetProperty("agentId").GetString()!);
        Assert.Equal(2, agents.Count);
        Assert.Equal("ui", agents["ui-1"].GetProperty("agentType").GetString());
        Assert.Equal("waiting", agents["ui-1"].GetProperty("status").GetString());
        Assert.Equal(65, agents["ui-1"].GetProperty("progress").GetInt32());
        Assert.Equal("Selected 5 components from library", agents["ui-1"].GetProperty("message").GetString());
        Assert.Equal("database", agents["db-1"].GetProperty("agentType").GetString());
        Assert.Equal(20, agents["db-1"].GetProperty("progress").GetInt32());
        Assert.Equal("Created 3 data tables", agents["db-1"].GetProperty("lastOutputSummary").GetString());

        var build = snapshot.GetProperty("build");
        Assert.Equal("running", build.GetProperty("state").GetString());
        Assert.Equal(start, build.GetProperty("startedAt").GetInt64());
        Assert.Equal("design", build.GetProperty("currentPhase").GetString());
        Assert.Equal(45, build.GetProperty("overallProgress").GetInt32());
        Assert.Equal(4, build.GetProperty("phases").GetArrayLength());

        var pending = Assert.Single(snapshot.GetProperty("pendingDecisions").EnumerateArray());
        Assert.Equal(decisionId, pending.GetProperty("decisionId").GetString());
        Assert.Equal("Which layout style do you prefer?", pending.GetProperty("question").GetString());
        Assert.Equal(2, pending.GetProperty("options").GetArrayLength());
        Assert.Equal(270, pending.GetProperty("timeLeft").GetInt32());

        var deployment = snapshot.GetProperty("deployment");
        Assert.Equal("dep-1", deployment.GetProperty("deploymentId").GetString());
        Assert.Equal("building", deployment.GetProperty("stage").GetString());
        Assert.Equal(40, deployment.GetProperty("progress").GetInt32());
        Assert.Equal("running", deployment.GetProperty("state").GetString());

        // no replay came with the snapshot
        await late.BarrierAsync();
        Assert.DoesNotContain(late.DrainAll(), e => e.Name is "build:progress" or "agent:status:update");

        // after the build completes and the deployment succeeds, a new joiner sees that
        await gateway.PublishAsync("p1", "build:completed", new { duration = 118, previewUrl = "http://localhost:3000/preview/p1", stats = new { componentsGenerated = 12, apiEndpointsCreated = 8, dataModelsCreated = 3 } });
        await gateway.PublishAsync("p1", "deployment:success", new { deploymentId = "dep-1", environment = "test", url = "https://test.example", healthStatus = "healthy", duration = 245 });
        await using var later = gateway.Client(gateway.Token("carol", ["p1"]));
        await later.ConnectAsync();
        await later.JoinAsync("p1");
        var after = await later.NextAsync("project:snapshot");
        Assert.Equal("completed", after.GetProperty("build").GetProperty("state").GetString());
        Assert.Equal(100, after.GetProperty("build").GetProperty("overallProgress").GetInt32());
        Assert.Equal("succeeded", after.GetProperty("deployment").GetProperty("state").GetString());
        Assert.Equal("https://test.example", after.GetProperty("deployment").GetProperty("url").GetString());
    }

    [Fact]
    public async Task Join_with_lastSeq_beyond_the_log_gets_a_snapshot()
    {
        await using var gateway = await TestGateway.StartAsync();
        await gateway.PublishAsync("p1", "build:progress", Progress(1));
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        var ack = await client.JoinAsync("p1", lastSeq: 999);
        Assert.False(ack.TryGetProperty("replayed", out _));
        var snapshot = await client.NextAsync("project:snapshot");
        Assert.Equal(1, snapshot.GetProperty("seq").GetInt64());
        Assert.Equal(JsonValueKind.Array, snapshot.GetProperty("agents").ValueKind);
        Assert.Equal(JsonValueKind.Null, snapshot.GetProperty("deployment").ValueKind);
    }

    [Fact]
    public async Task Empty_project_gets_an_empty_snapshot()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["*"]));
        await client.ConnectAsync();
        var ack = await client.JoinAsync("fresh");
        Assert.Equal(0, ack.GetProperty("seq").GetInt64());
        var snapshot = await client.NextAsync("project:snapshot");
        Assert.Equal(0, snapshot.GetProperty("seq").GetInt64());
        Assert.Empty(snapshot.GetProperty("agents").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, snapshot.GetProperty("build").ValueKind);
        Assert.Empty(snapshot.GetProperty("pendingDecisions").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, snapshot.GetProperty("deployment").ValueKind);
    }
}
