using System.Net;
using Builder.Runner;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests.Runner;

/// <summary>Cancelling a build, and one build at a time per project.</summary>
public sealed class BuildCancellationTests
{
    private static async Task<BuilderClient> JoinedAsync(TestGateway gateway, string project)
    {
        var client = gateway.Client(gateway.Token("alice", [project]));
        await client.ConnectAsync();
        await client.JoinAsync(project);
        return client;
    }

    /// <summary>Starts a build and waits until it is parked on the layout decision (running, not finishing by itself).</summary>
    private static async Task<(string BuildId, List<ReceivedEvent> Events)> StartWaitingAsync(TestGateway gateway, BuilderClient client, string project)
    {
        var buildId = await BuildApi.StartAsync(gateway, project, speed: FakePacing.Speed);
        var events = await EventStream.ReadUntilAsync(client, "user:decision:required", clock: gateway.Time);
        return (buildId, events);
    }

    [Fact]
    public async Task Cancelling_a_running_build_ends_it_with_build_cancelled_and_who_cancelled()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-cancel");
        var (buildId, events) = await StartWaitingAsync(gateway, alice, "shop-cancel");

        var (status, body) = await BuildApi.CancelAsync(gateway, "shop-cancel", buildId, by: "alice");
        Assert.True(status == HttpStatusCode.Accepted, $"cancel: {(int)status} {body.GetRawText()}");
        Assert.True(body.GetProperty("cancelled").GetBoolean());

        await EventStream.ReadUntilAsync(alice, "build:cancelled", events, clock: gateway.Time);
        var cancelled = events[^1].Payload();
        Assert.Equal("shop-cancel", cancelled.GetProperty("projectId").GetString());
        Assert.Equal(buildId, cancelled.GetProperty("buildId").GetString());
        Assert.Equal("alice", cancelled.GetProperty("cancelledBy").GetString());

        // the agents stop: nothing is built after the cancellation, no card stays working or waiting
        await gateway.Services.GetRequiredService<BuildRunner>().WhenFinishedAsync("shop-cancel").WaitAsync(TestGateway.Wait);
        await alice.BarrierAsync();
        events.AddRange(alice.DrainAll().Where(EventStream.IsEnvelope));
        Assert.DoesNotContain(events, e => e.Name is "build:completed" or "build:failed" or "agent:output");
        var cancelledAt = events.FindIndex(e => e.Name == "build:cancelled");
        Assert.All(events.Skip(cancelledAt + 1), e => Assert.Equal("agent:status:update", e.Name));
        var lastStatus = events.Where(e => e.Name == "agent:status:update")
            .GroupBy(e => e.Payload().GetProperty("agentId").GetString()!)
            .ToDictionary(g => g.Key, g => g.Last().Payload().GetProperty("status").GetString());
        Assert.All(lastStatus, s => Assert.True(s.Value is not ("working" or "waiting"), $"{s.Key} stays {s.Value} after the cancellation:\n{EventStream.Describe(events)}"));

        // cancelling it again: it is not running any more
        var (again, _) = await BuildApi.CancelAsync(gateway, "shop-cancel", buildId);
        Assert.Equal(HttpStatusCode.NotFound, again);
    }

    [Fact]
    public async Task Cancelled_build_leaves_no_decision_pending()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-cancel-decision");
        var (buildId, events) = await StartWaitingAsync(gateway, alice, "shop-cancel-decision");
        var decisionId = events[^1].Payload().GetProperty("decisionId").GetString()!;

        await BuildApi.CancelAsync(gateway, "shop-cancel-decision", buildId);
        await EventStream.ReadUntilAsync(alice, "build:cancelled", events, clock: gateway.Time);
        await gateway.Services.GetRequiredService<BuildRunner>().WhenFinishedAsync("shop-cancel-decision").WaitAsync(TestGateway.Wait);

        // a client joining now must not be asked a question of a build that no longer runs
        await using var bob = gateway.Client(gateway.Token("bob", ["shop-cancel-decision"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("shop-cancel-decision");
        var snapshot = await bob.NextAsync("project:snapshot");
        Assert.Equal("cancelled", snapshot.GetProperty("build").GetProperty("state").GetString());
        Assert.True(snapshot.GetProperty("pendingDecisions").GetArrayLength() == 0, "the cancelled build's decision is still pending: " + snapshot.GetProperty("pendingDecisions").GetRawText());
        var (_, decision) = await gateway.GetDecisionAsync(decisionId);
        Assert.NotEqual("pending", decision.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Cancelling_an_unknown_build_is_404()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        var (status, body) = await BuildApi.CancelAsync(gateway, "shop-none", "build-does-not-exist");
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Equal("BUILD_NOT_RUNNING", body.GetProperty("error").GetProperty("code").GetString());

        // a build id of another project is unknown in this one
        await using var alice = await JoinedAsync(gateway, "shop-other");
        var (buildId, _) = await StartWaitingAsync(gateway, alice, "shop-other");
        var (wrongProject, _) = await BuildApi.CancelAsync(gateway, "shop-none", buildId);
        Assert.Equal(HttpStatusCode.NotFound, wrongProject);
        Assert.Equal(buildId, gateway.Services.GetRequiredService<BuildRunner>().RunningBuildId("shop-other"));
    }

    [Fact]
    public async Task Second_build_of_a_project_while_one_runs_is_409_with_the_running_build_id()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "shop-busy");
        var (buildId, started) = await StartWaitingAsync(gateway, alice, "shop-busy");

        var (status, body) = await BuildApi.StartRawAsync(gateway, "shop-busy", new { requirements = BuildApi.Shop, simulate = true, speed = BuildApi.Fast });
        Assert.True(status == HttpStatusCode.Conflict, $"second build: {(int)status} {body.GetRawText()}");
        Assert.Equal("BUILD_RUNNING", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(buildId, body.GetProperty("error").GetProperty("buildId").GetString());

        // another project builds meanwhile
        await BuildApi.StartAsync(gateway, "shop-busy-other", speed: FakePacing.Speed);

        // the refused start did not disturb the running build, which completes
        var decisionId = started[^1].Payload().GetProperty("decisionId").GetString();
        var ack = await alice.EmitWithAckAsync("user:decision:response", new { decisionId, selectedOptionId = "option-1" });
        Assert.True(ack.GetProperty("ok").GetBoolean(), ack.GetRawText());
        var events = await EventStream.RunToEndAsync(alice, answer: null, clock: gateway.Time);
        Assert.True(events[^1].Name == "build:completed", EventStream.Describe(events));
        Assert.Equal(buildId, events[^1].Payload().GetProperty("buildId").GetString());
        Assert.Single(events, e => e.Name == "build:completed");

        // once it ended the project takes a new build
        await gateway.Services.GetRequiredService<BuildRunner>().WhenFinishedAsync("shop-busy").WaitAsync(TestGateway.Wait);
        var next = await BuildApi.StartAsync(gateway, "shop-busy", speed: FakePacing.Speed);
        Assert.NotEqual(buildId, next);
    }
}
