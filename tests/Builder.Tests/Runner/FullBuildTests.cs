using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>A whole simulated build with deployment, watched by the official Node socket.io-client (node/build_watch.mjs).</summary>
public sealed class FullBuildTests
{
    private static readonly TimeSpan StepWait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Node_client_sees_a_whole_build_and_deployment_in_order_and_the_stats_match_the_outputs()
    {
        Assert.True(NodeScript.ClientInstalled, $"socket.io-client is not installed: run `npm ci` in {NodeScript.InteropDir}");
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        const string project = "shop-full";
        var token = gateway.Token("user-7", [project]);

        await using var node = NodeScript.Start("build_watch.mjs", gateway.Url.ToString().TrimEnd('/'), token, project, "option-2", "deployment:success,deployment:failed,build:failed,build:cancelled");
        var joined = await node.StepAsync("joined", StepWait);
        var buildId = await BuildApi.StartAsync(gateway, project, deploy: true);

        var done = await node.StepAsync("done", StepWait);
        Assert.True(await node.ExitAsync(StepWait) == 0, "node script failed:\n" + node.Output);
        var events = done.GetProperty("events").EnumerateArray().Select(e => new ReceivedEvent(e.GetProperty("type").GetString()!, e.Clone())).ToList();

        BuildAssertions.Contiguous(events, project, after: joined.GetProperty("seq").GetInt64());
        var completed = BuildAssertions.CompletedBuild(events, project, deployed: true);
        Assert.Equal(buildId, completed.GetProperty("buildId").GetString());
        BuildAssertions.ShopDatabase(events);

        // the script's answer is the one the UI agent built with
        var answered = done.GetProperty("answered");
        Assert.Equal(JsonValueKind.Object, answered.ValueKind);
        var resolved = Assert.Single(events.Payloads("user:decision:resolved"));
        Assert.Equal(answered.GetProperty("decisionId").GetString(), resolved.GetProperty("decisionId").GetString());
        Assert.Equal("option-2", resolved.GetProperty("selectedOptionId").GetString());
        Assert.Equal("user", resolved.GetProperty("resolvedBy").GetString());
        Assert.Equal("user-7", resolved.GetProperty("userId").GetString());
        Assert.Equal("Classic Table", BuildAssertions.Output(events, "ui").GetProperty("layout").GetString());

        // three entities, their CRUD endpoints, and the components of the chosen layout
        var stats = completed.GetProperty("stats");
        Assert.Equal(3, stats.GetProperty("dataModelsCreated").GetInt32());
        Assert.True(stats.GetProperty("apiEndpointsCreated").GetInt32() >= 15, stats.GetRawText());
        Assert.True(stats.GetProperty("componentsGenerated").GetInt32() > 0, stats.GetRawText());

        // the previewUrl is a signed link to this gateway, and its page shows what the agents produced
        var previewUrl = completed.GetProperty("previewUrl").GetString()!;
        Assert.Equal(new Uri(gateway.Url, $"preview/{project}"), new Uri(new Uri(previewUrl).GetLeftPart(UriPartial.Path)));
        using var preview = await gateway.Http.GetAsync(new Uri(previewUrl));
        var html = await preview.Content.ReadAsStringAsync();
        Assert.True(preview.IsSuccessStatusCode, $"GET /preview/{project}: {(int)preview.StatusCode} {html}");
        Assert.Contains("Classic Table", html, StringComparison.Ordinal);
        Assert.Contains("CREATE TABLE users", html, StringComparison.Ordinal);
    }
}
