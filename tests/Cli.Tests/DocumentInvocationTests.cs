using System.Net.Http.Json;
using System.Text.Json;
using Abuse.Tests;

namespace Cli.Tests;

/// <summary>The protocol document's "Testing" invocation, as written, against a started gateway running a simulated build.</summary>
[Collection(GatewayCollection.Name)]
public sealed class DocumentInvocationTests(GatewayFixture fixture)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Document_invocation_receives_the_agent_updates_of_a_simulated_build()
    {
        var project = "doc-" + Guid.NewGuid().ToString("N")[..8];
        var token = GatewayFixture.Token("doc-user", project);
        await using var cli = CliProcess.Start(
        [
            $"{fixture.Url}/builder",
            "--auth", $"{{\"token\":\"{token}\"}}",
            "--emit", "join-project", $"{{\"projectId\":\"{project}\"}}",
            "--on", "agent:status:update",
        ]);
        await cli.WaitForLineAsync(l => l.StartsWith("ack join-project", StringComparison.Ordinal), Wait, "the join's ack");
        Assert.Contains("\"ok\":true", cli.Lines.Single(l => l.StartsWith("ack join-project", StringComparison.Ordinal)), StringComparison.Ordinal);

        await StartBuildAsync(project);

        // every agent of the simulated build reports; only agent:status:update is printed
        var types = new HashSet<string>(StringComparer.Ordinal);
        await Deadline.UntilAsync(() =>
        {
            types = Events(cli).Where(e => e.Name == "agent:status:update").Select(e => e.Data.GetProperty("payload").GetProperty("agentType").GetString()!).ToHashSet(StringComparer.Ordinal);
            return types.IsSupersetOf(["ui", "backend", "database", "integration"]) || cli.HasExited;
        }, Wait, "agent:status:update of the four agents");
        Assert.False(cli.HasExited, cli.Stderr);
        Assert.Superset(new HashSet<string> { "ui", "backend", "database", "integration" }, types);

        var events = Events(cli);
        Assert.All(events, e =>
        {
            Assert.Equal("agent:status:update", e.Name);
            Assert.Equal("agent:status:update", e.Data.GetProperty("type").GetString());
            Assert.Equal(project, e.Data.GetProperty("projectId").GetString());
        });
        var seqs = events.Select(e => e.Data.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(seqs.Order(), seqs);
        Assert.Equal(seqs.Count, seqs.Distinct().Count());
        Assert.Equal(string.Empty, cli.Stderr);
    }

    [Fact]
    public async Task On_star_with_json_prints_every_event_of_the_build_and_until_ends_it()
    {
        var project = "star-" + Guid.NewGuid().ToString("N")[..8];
        var token = GatewayFixture.Token("star-user", project);
        await using var cli = CliProcess.Start(
        [
            $"{fixture.Url}/builder",
            "--auth", $"{{\"token\":\"{token}\"}}",
            "--emit", "join-project", $"{{\"projectId\":\"{project}\"}}",
            "--on", "*", "--json", "--until", "build:completed", "--timeout", "120",
        ]);
        await cli.WaitForLineAsync(l => l.Contains("\"ack\":\"join-project\"", StringComparison.Ordinal), Wait, "the join's ack");
        await StartBuildAsync(project);

        // the build waits for the layout decision: answered with the tool
        var asked = await cli.WaitForLineAsync(l => l.Contains("\"event\":\"user:decision:required\"", StringComparison.Ordinal), Wait, "the decision");
        var decisionId = JsonDocument.Parse(asked).RootElement.GetProperty("data").GetProperty("payload").GetProperty("decisionId").GetString()!;
        var (decideExit, decideOut, decideErr) = await CliProcess.RunAsync(["decide", decisionId, "option-2"], fixture.Env(token));
        Assert.True(decideExit == 0, decideErr);
        Assert.Contains($"answered {decisionId}: option-2", decideOut, StringComparison.Ordinal);

        Assert.Equal(0, await cli.WaitForExitAsync(Wait));
        var lines = cli.Lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        var names = lines.Where(l => l.TryGetProperty("event", out _)).Select(l => l.GetProperty("event").GetString()!).ToList();
        foreach (var expected in new[] { "authenticated", "project:snapshot", "project-joined", "build:started", "agent:status:update", "agent:output", "build:progress", "user:decision:required", "user:decision:resolved", "build:completed" })
        {
            Assert.Contains(expected, names);
        }

        Assert.DoesNotContain("ping", names);
        Assert.Equal("build:completed", names[^1]);
        var resolved = lines.Single(l => l.TryGetProperty("event", out var e) && e.GetString() == "user:decision:resolved").GetProperty("data").GetProperty("payload");
        Assert.Equal("option-2", resolved.GetProperty("selectedOptionId").GetString());
        var seqs = lines.Where(l => l.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object && d.TryGetProperty("eventId", out _)).Select(l => l.GetProperty("data").GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
    }

    [Fact]
    public async Task The_tool_answers_the_application_heartbeat_and_stays_connected()
    {
        var token = GatewayFixture.Token("beat-user", "beat");
        var before = (await fixture.Gateway.MetricsAsync()).GetValueOrDefault("builder_heartbeat_rtt_seconds_count");
        var dropsBefore = (await fixture.Gateway.MetricsAsync()).GetValueOrDefault("builder_heartbeat_disconnects_total");
        await using var cli = CliProcess.Start([$"{fixture.Url}/builder", "--auth", $"{{\"token\":\"{token}\"}}", "--on", "*"]);
        await cli.WaitForLineAsync(l => l.Contains(" authenticated ", StringComparison.Ordinal), Wait, "authenticated");

        // pings every second and a drop after one unanswered: five answered pings prove it
        await Deadline.UntilAsync(async () => cli.HasExited || (await fixture.Gateway.MetricsAsync()).GetValueOrDefault("builder_heartbeat_rtt_seconds_count") >= before + 5, Wait, "five heartbeat round trips");
        Assert.False(cli.HasExited, $"the tool ended: {cli.Stderr}");
        Assert.Equal(dropsBefore, (await fixture.Gateway.MetricsAsync()).GetValueOrDefault("builder_heartbeat_disconnects_total"));
        Assert.DoesNotContain(cli.Lines, l => l.Contains(" ping ", StringComparison.Ordinal));
    }

    private async Task StartBuildAsync(string project)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{project}/builds")
        {
            Content = JsonContent.Create(new { requirements = "An online shop with users, products and orders", simulate = true, speed = 1000, seed = 7 }),
        };
        request.Headers.Add("X-Api-Key", GatewayProcess.ApiKey);
        using var response = await fixture.Gateway.Http.SendAsync(request);
        Assert.Equal(202, (int)response.StatusCode);
    }

    /// <summary>The readable lines <c>HH:mm:ss.fff event {json}</c> of the tool.</summary>
    private static List<(string Name, JsonElement Data)> Events(CliProcess cli) =>
        cli.Lines
            .Where(l => !l.StartsWith("ack ", StringComparison.Ordinal))
            .Select(l => l.Split(' ', 3))
            .Select(p => (p[1], JsonDocument.Parse(p[2]).RootElement))
            .ToList();
}
