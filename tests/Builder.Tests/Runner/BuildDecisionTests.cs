using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>The UI agent's layout decision inside a build: the user's answer, or the default at the timeout.</summary>
public sealed class BuildDecisionTests
{
    private static async Task<BuilderClient> JoinedAsync(TestGateway gateway, string userId, string project)
    {
        var client = gateway.Client(gateway.Token(userId, [project]));
        await client.ConnectAsync();
        await client.JoinAsync(project);
        return client;
    }

    [Fact]
    public async Task Answered_decision_shapes_the_ui_output()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "alice", "shop-answer");
        await BuildApi.StartAsync(gateway, "shop-answer", speed: FakePacing.Speed);

        var events = await EventStream.RunToEndAsync(alice, answer: "option-2", clock: gateway.Time);
        BuildAssertions.CompletedBuild(events, "shop-answer", deployed: false);
        var resolved = Assert.Single(events.Payloads("user:decision:resolved"));
        Assert.Equal("option-2", resolved.GetProperty("selectedOptionId").GetString());
        Assert.Equal("user", resolved.GetProperty("resolvedBy").GetString());
        Assert.Equal("alice", resolved.GetProperty("userId").GetString());

        var ui = BuildAssertions.Output(events, "ui");
        Assert.Equal("Classic Table", ui.GetProperty("layout").GetString());
        var components = ui.GetProperty("components").EnumerateArray().Select(c => c.GetString()).ToList();
        Assert.Contains("DataTable", components);
        Assert.DoesNotContain("ChartPanel", components);
    }

    [Fact]
    public async Task Unanswered_decision_times_out_to_the_default_and_the_build_goes_on()
    {
        await using var gateway = await FakePacing.StartGatewayAsync();
        await using var alice = await JoinedAsync(gateway, "alice", "shop-timeout");
        await BuildApi.StartAsync(gateway, "shop-timeout", speed: FakePacing.Speed);

        var events = await EventStream.ReadUntilAsync(alice, "user:decision:required", clock: gateway.Time);
        var required = events[^1].Payload();
        Assert.Equal(300, required.GetProperty("timeout").GetInt32());
        Assert.Equal("option-1", required.GetProperty("defaultOptionId").GetString());

        // the build waits for the user: nothing moves before the deadline
        gateway.Time.Advance(TimeSpan.FromSeconds(299));
        await alice.BarrierAsync();
        var waiting = alice.DrainAll().Where(EventStream.IsEnvelope).ToList();
        Assert.DoesNotContain(waiting, e => e.Name is "user:decision:resolved" or "build:completed" or "agent:output");
        events.AddRange(waiting);

        gateway.Time.Advance(TimeSpan.FromSeconds(2));
        events.AddRange(await EventStream.RunToEndAsync(alice, answer: null, clock: gateway.Time));
        BuildAssertions.CompletedBuild(events, "shop-timeout", deployed: false);
        var resolved = Assert.Single(events.Payloads("user:decision:resolved"));
        Assert.Equal(required.GetProperty("decisionId").GetString(), resolved.GetProperty("decisionId").GetString());
        Assert.Equal("timeout", resolved.GetProperty("resolvedBy").GetString());
        Assert.Equal("option-1", resolved.GetProperty("selectedOptionId").GetString());
        Assert.False(resolved.TryGetProperty("userId", out _));
        Assert.Equal("Modern Dashboard", BuildAssertions.Output(events, "ui").GetProperty("layout").GetString());
    }
}
