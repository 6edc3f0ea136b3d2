using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>Project rooms: a user reaches only the projects their token lists.</summary>
public sealed class ProjectAccessTests
{
    [Fact]
    public async Task Join_of_another_project_is_refused_and_its_events_never_arrive()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p-alice"]));
        await client.ConnectAsync();

        var ack = await client.EmitWithAckAsync("join-project", new { projectId = "p-bob" });
        Assert.False(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        Assert.Equal("FORBIDDEN", ack.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("p-bob", ack.GetProperty("error").GetProperty("details").GetProperty("projectId").GetString());

        var error = await client.NextAsync("error");
        Assert.Equal("error", error.GetProperty("type").GetString());
        Assert.Equal("FORBIDDEN", error.GetProperty("payload").GetProperty("code").GetString());
        Assert.Equal(0, client.Pending("project-joined"));
        Assert.Equal(0, client.Pending("project:snapshot"));

        await client.JoinAsync("p-alice");
        client.DrainAll();

        // an event of p-bob published first, then one of p-alice: only the latter arrives
        await gateway.PublishAsync("p-bob", "build:progress", new { currentPhase = "design", phaseProgress = 10, overallProgress = 5 });
        await gateway.CreateDecisionAsync("p-bob", TestGateway.TwoOptionDecision());
        await gateway.PublishAsync("p-alice", "build:progress", new { currentPhase = "generate", phaseProgress = 50, overallProgress = 60 });
        var first = await client.NextAnyAsync();
        Assert.Equal("build:progress", first.Name);
        Assert.Equal("p-alice", first.Data.GetProperty("projectId").GetString());
        await client.BarrierAsync();
        Assert.Empty(client.DrainAll());
        Assert.True(client.Connected);
    }

    [Fact]
    public async Task Wildcard_token_reaches_every_project_and_leave_project_stops_its_events()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("admin", ["*"]));
        await client.ConnectAsync();
        await client.JoinAsync("any-project");

        await gateway.PublishAsync("any-project", "agent:status:update", new { agentId = "a1", agentType = "ui", status = "working" });
        Assert.Equal("a1", (await client.NextAsync("agent:status:update")).GetProperty("payload").GetProperty("agentId").GetString());

        var left = await client.EmitWithAckAsync("leave-project", new { projectId = "any-project" });
        Assert.True(left.GetProperty("ok").GetBoolean());
        await gateway.PublishAsync("any-project", "agent:status:update", new { agentId = "a2", agentType = "ui", status = "idle" });
        await client.BarrierAsync();
        Assert.Equal(0, client.Pending("agent:status:update"));
    }

    [Fact]
    public async Task Project_joined_counts_distinct_members()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var alice1 = gateway.Client(gateway.Token("alice", ["p1"]));
        await using var alice2 = gateway.Client(gateway.Token("alice", ["p1"]));
        await using var bob = gateway.Client(gateway.Token("bob", ["p1"]));
        await alice1.ConnectAsync();
        await alice2.ConnectAsync();
        await bob.ConnectAsync();

        Assert.Equal(1, (await alice1.JoinAsync("p1")).GetProperty("members").GetInt32());
        Assert.Equal(1, (await alice2.JoinAsync("p1")).GetProperty("members").GetInt32());
        Assert.Equal(2, (await bob.JoinAsync("p1")).GetProperty("members").GetInt32());
    }
}
