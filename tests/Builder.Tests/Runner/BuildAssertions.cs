using System.Text.Json;
using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>What a client watching a whole build must see, checked on the events it received in order.</summary>
internal static class BuildAssertions
{
    public static readonly string[] Phases = ["analyze", "design", "generate", "validate"];

    public static readonly string[] Stages = ["building", "deploying", "health-check"];

    private static string Trail(List<ReceivedEvent> events) => "\nreceived:\n" + EventStream.Describe(events);

    /// <summary>seq strictly increasing without a gap, every event of <paramref name="projectId"/>.</summary>
    public static void Contiguous(List<ReceivedEvent> events, string projectId, long? after = null)
    {
        var previous = after ?? (events.Count > 0 ? events[0].Seq() - 1 : 0);
        foreach (var e in events)
        {
            Assert.True(e.Data.GetProperty("type").GetString() == e.Name, $"{e.Name} carries type {e.Data.GetProperty("type")}");
            Assert.True(e.Data.GetProperty("projectId").GetString() == projectId, $"{e.Name} seq {e.Seq()} is of project {e.Data.GetProperty("projectId")}, not {projectId}");
            Assert.True(e.Seq() == previous + 1, $"{e.Name}: seq {e.Seq()} after {previous}" + Trail(events));
            previous = e.Seq();
        }
    }

    /// <summary>
    /// A successful build: build:started first; agents, decisions and progress until build:completed;
    /// progress never backwards and 100 before the end; every agent card ends "completed"; the
    /// stats equal what the agents output. With <paramref name="deployed"/>: then deployment:progress
    /// through building → deploying → health-check and deployment:success last.
    /// Returns the build:completed payload.
    /// </summary>
    public static JsonElement CompletedBuild(List<ReceivedEvent> events, string projectId, bool deployed)
    {
        Assert.True(events.Count > 0 && events[0].Name == "build:started", "the first event is build:started" + Trail(events));
        var started = events[0].Payload();
        Assert.Equal(projectId, started.GetProperty("projectId").GetString());
        Assert.Equal(Phases, started.GetProperty("phases").EnumerateArray().Select(p => p.GetString()));
        Assert.True(started.GetProperty("estimatedDuration").GetDouble() > 0, "estimatedDuration > 0");

        Assert.Single(events, e => e.Name == "build:started");
        Assert.Single(events, e => e.Name == "build:completed");
        Assert.DoesNotContain(events, e => e.Name is "build:failed" or "build:cancelled" or "agent:error" or "deployment:failed");
        var completedAt = events.FindIndex(e => e.Name == "build:completed");

        // during the build: agents, decisions, progress; after it: the deployment only
        for (var i = 1; i < events.Count; i++)
        {
            var name = events[i].Name;
            if (i < completedAt)
            {
                Assert.True(name.StartsWith("agent:", StringComparison.Ordinal) || name.StartsWith("user:decision:", StringComparison.Ordinal) || name == "build:progress", $"{name} during the build" + Trail(events));
            }
            else if (i > completedAt)
            {
                // the deployment, and the deployment agent's card
                Assert.True(deployed && (name.StartsWith("deployment:", StringComparison.Ordinal) || IsDeploymentAgent(events[i])), $"{name} after build:completed" + Trail(events));
            }
        }

        Progress(events.Take(completedAt).ToList(), projectId);
        Decisions(events.Take(completedAt).ToList());

        // no card stays "working": the last status of every agent is completed
        var lastStatus = events.Take(completedAt).Where(e => e.Name == "agent:status:update")
            .GroupBy(e => e.Payload().GetProperty("agentId").GetString()!)
            .ToDictionary(g => g.Key, g => g.Last().Payload().GetProperty("status").GetString());
        Assert.Equal(["backend", "database", "integration", "ui"], events.Take(completedAt).Payloads("agent:status:update").Select(p => p.GetProperty("agentType").GetString()).Distinct().Order(StringComparer.Ordinal));
        Assert.All(lastStatus, s => Assert.True(s.Value == "completed", $"{s.Key} ends {s.Value}"));

        // the stats are counted from what the agents output
        var outputs = events.Take(completedAt).Payloads("agent:output");
        Assert.Equal(["backend", "database", "integration", "ui"], outputs.Select(p => p.GetProperty("agentType").GetString()).Order(StringComparer.Ordinal));
        Assert.All(outputs, p => Assert.False(string.IsNullOrWhiteSpace(p.GetProperty("summary").GetString())));
        var completed = events[completedAt].Payload();
        Assert.Equal(projectId, completed.GetProperty("projectId").GetString());
        Assert.True(completed.GetProperty("duration").GetDouble() >= 0, "duration");
        Assert.EndsWith("/preview/" + projectId, new Uri(completed.GetProperty("previewUrl").GetString()!).AbsolutePath, StringComparison.Ordinal);
        var stats = completed.GetProperty("stats");
        Assert.Equal(Output(events, "ui").GetProperty("components").GetArrayLength(), stats.GetProperty("componentsGenerated").GetInt32());
        Assert.Equal(Output(events, "backend").GetProperty("endpoints").GetArrayLength(), stats.GetProperty("apiEndpointsCreated").GetInt32());
        Assert.Equal(Output(events, "database").GetProperty("entities").GetArrayLength(), stats.GetProperty("dataModelsCreated").GetInt32());

        if (deployed)
        {
            Deployment(events.Skip(completedAt + 1).ToList());
        }

        return completed;
    }

    /// <summary>build:progress: never backwards, phases in order, 100 at the end, an estimate left.</summary>
    public static void Progress(List<ReceivedEvent> events, string projectId)
    {
        var progress = events.Payloads("build:progress");
        Assert.True(progress.Count > 0, "no build:progress" + Trail(events));
        var overall = -1;
        var phase = 0;
        foreach (var p in progress)
        {
            Assert.Equal(projectId, p.GetProperty("projectId").GetString());
            var now = p.GetProperty("overallProgress").GetInt32();
            Assert.True(now >= overall, $"overallProgress went backwards: {overall} → {now}" + Trail(events));
            overall = now;
            var phaseProgress = p.GetProperty("phaseProgress").GetInt32();
            Assert.InRange(phaseProgress, 0, 100);
            var index = Array.IndexOf(Phases, p.GetProperty("currentPhase").GetString());
            Assert.True(index >= phase, $"currentPhase went back to {p.GetProperty("currentPhase")}" + Trail(events));
            phase = index;
            Assert.False(string.IsNullOrWhiteSpace(p.GetProperty("message").GetString()));
            Assert.True(p.GetProperty("estimatedTimeRemaining").GetDouble() >= 0, "estimatedTimeRemaining >= 0");
        }

        Assert.Equal(100, overall);
        Assert.Equal("validate", progress[^1].GetProperty("currentPhase").GetString());
        Assert.Equal(100, progress[^1].GetProperty("phaseProgress").GetInt32());
    }

    /// <summary>The layout decision: asked once with the document's options, resolved after it was asked and before the UI output.</summary>
    public static void Decisions(List<ReceivedEvent> events)
    {
        var requiredAt = events.FindIndex(e => e.Name == "user:decision:required");
        Assert.True(requiredAt >= 0, "no user:decision:required" + Trail(events));
        Assert.Single(events, e => e.Name == "user:decision:required");
        var required = events[requiredAt].Payload();
        Assert.Equal("Which layout style do you prefer?", required.GetProperty("question").GetString());
        Assert.Equal("agent-ui", required.GetProperty("agentId").GetString());
        var options = required.GetProperty("options").EnumerateArray().Select(o => (o.GetProperty("id").GetString(), o.GetProperty("label").GetString(), o.GetProperty("description").GetString())).ToList();
        Assert.Equal([("option-1", "Modern Dashboard", "Card-based layout with charts"), ("option-2", "Classic Table", "Traditional table-based layout")], options);

        var resolvedAt = events.FindIndex(e => e.Name == "user:decision:resolved");
        Assert.True(resolvedAt > requiredAt, "user:decision:resolved after the decision was asked" + Trail(events));
        Assert.Equal(required.GetProperty("decisionId").GetString(), events[resolvedAt].Payload().GetProperty("decisionId").GetString());
        var uiOutputAt = events.FindIndex(e => e.Name == "agent:output" && e.Payload().GetProperty("agentType").GetString() == "ui");
        Assert.True(uiOutputAt > resolvedAt, "the UI output comes after the decision was resolved" + Trail(events));
    }

    /// <summary>An agent:* event of the deployment agent.</summary>
    public static bool IsDeploymentAgent(ReceivedEvent e) =>
        e.Name.StartsWith("agent:", StringComparison.Ordinal) && e.Payload().GetProperty("agentType").GetString() == "deployment";

    /// <summary>
    /// The events of a deployment (those after build:completed): deployment:progress through
    /// building → deploying → health-check, each to 100, then deployment:success; alongside, the
    /// deployment agent's card (see <see cref="DeploymentAgent"/>).
    /// </summary>
    public static void Deployment(List<ReceivedEvent> events)
    {
        Assert.True(events.Count > 1 && events[^1].Name == "deployment:success", "deployment:success ends the deployment" + Trail(events));
        Assert.All(events, e => Assert.True(e.Name.StartsWith("deployment:", StringComparison.Ordinal) || IsDeploymentAgent(e), $"{e.Name} during the deployment" + Trail(events)));
        DeploymentAgent(events);
        var progress = events.Take(events.Count - 1).Where(e => !IsDeploymentAgent(e)).ToList();
        Assert.All(progress, e => Assert.Equal("deployment:progress", e.Name));
        var deploymentId = progress[0].Payload().GetProperty("deploymentId").GetString();
        Assert.False(string.IsNullOrEmpty(deploymentId));
        var stage = 0;
        var percent = -1;
        foreach (var p in progress.Select(e => e.Payload()))
        {
            Assert.Equal(deploymentId, p.GetProperty("deploymentId").GetString());
            Assert.Equal("test", p.GetProperty("environment").GetString());
            var index = Array.IndexOf(Stages, p.GetProperty("stage").GetString());
            Assert.True(index >= stage, $"stage went back to {p.GetProperty("stage")}" + Trail(events));
            if (index > stage)
            {
                Assert.True(percent == 100, $"stage {Stages[stage]} left at {percent}%" + Trail(events));
                percent = -1;
                stage = index;
            }

            var now = p.GetProperty("progress").GetInt32();
            Assert.True(now >= percent, $"deployment progress went backwards in {Stages[stage]}: {percent} → {now}");
            percent = now;
        }

        Assert.Equal(Stages, progress.Select(e => e.Payload().GetProperty("stage").GetString()).Distinct());
        Assert.Equal(100, percent);

        var success = events[^1].Payload();
        Assert.Equal(deploymentId, success.GetProperty("deploymentId").GetString());
        Assert.Equal("test", success.GetProperty("environment").GetString());
        Assert.StartsWith("https://", success.GetProperty("url").GetString(), StringComparison.Ordinal);
        Assert.Equal("healthy", success.GetProperty("healthStatus").GetString());
        Assert.True(success.GetProperty("duration").GetDouble() >= 0, "duration");
    }

    /// <summary>
    /// The deployment agent of a successful deployment, in order: its card turns "working" before
    /// the first deployment:progress and again at each stage (naming it) before that stage's
    /// progress, its progress never goes back, then its agent:output (the deployed URL, the one of
    /// deployment:success), then "completed" at 100, then deployment:success.
    /// </summary>
    public static void DeploymentAgent(List<ReceivedEvent> events)
    {
        var agent = events.Select((e, i) => (Event: e, At: i)).Where(x => IsDeploymentAgent(x.Event)).ToList();
        Assert.True(agent.Count > 0, "the deployment agent reported nothing" + Trail(events));
        Assert.All(agent, x => Assert.Equal("agent-deployment", x.Event.Payload().GetProperty("agentId").GetString()));
        Assert.True(events[0].Name == "agent:status:update" && IsDeploymentAgent(events[0]) && events[0].Payload().GetProperty("status").GetString() == "working", "the deployment agent's card turns working first" + Trail(events));
        Assert.DoesNotContain(agent, x => x.Event.Name == "agent:error");

        var statuses = agent.Where(x => x.Event.Name == "agent:status:update").ToList();
        var last = statuses[^1].Event.Payload();
        Assert.Equal("completed", last.GetProperty("status").GetString());
        Assert.Equal(100, last.GetProperty("progress").GetInt32());
        var working = statuses.Take(statuses.Count - 1).Select(x => x.Event.Payload()).ToList();
        Assert.All(working, p => Assert.Equal("working", p.GetProperty("status").GetString()));
        Assert.All(working, p => Assert.False(string.IsNullOrWhiteSpace(p.GetProperty("currentTask").GetString())));
        var percents = working.Select(p => p.GetProperty("progress").GetInt32()).ToList();
        Assert.True(percents.SequenceEqual(percents.Order()), $"the deployment agent's progress went back: {string.Join(", ", percents)}" + Trail(events));
        foreach (var stage in Stages)
        {
            var firstProgress = events.FindIndex(e => e.Name == "deployment:progress" && e.Payload().GetProperty("stage").GetString() == stage);
            Assert.True(statuses.Any(x => x.At < firstProgress && x.Event.Payload().GetProperty("message").GetString()!.Contains($"({stage})", StringComparison.Ordinal)), $"no working report of the stage {stage} before its progress" + Trail(events));
        }

        var output = Assert.Single(agent, x => x.Event.Name == "agent:output");
        var success = events[^1].Payload();
        Assert.Equal(success.GetProperty("url").GetString(), output.Event.Payload().GetProperty("output").GetProperty("url").GetString());
        Assert.Equal(success.GetProperty("deploymentId").GetString(), output.Event.Payload().GetProperty("output").GetProperty("deploymentId").GetString());
        Assert.Contains(success.GetProperty("url").GetString()!, output.Event.Payload().GetProperty("summary").GetString(), StringComparison.Ordinal);
        Assert.True(output.At < statuses[^1].At && statuses[^1].At == events.Count - 2, "agent:output, then completed, then deployment:success" + Trail(events));
    }

    /// <summary>The output of the agent of <paramref name="agentType"/> (exactly one).</summary>
    public static JsonElement Output(List<ReceivedEvent> events, string agentType) =>
        Assert.Single(events.Payloads("agent:output"), p => p.GetProperty("agentType").GetString() == agentType).GetProperty("output");

    /// <summary>The shop's data model: User, Product, Order, each with its CREATE TABLE migration.</summary>
    public static void ShopDatabase(List<ReceivedEvent> events)
    {
        var database = Output(events, "database");
        Assert.Equal(["User", "Product", "Order"], database.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()));
        Assert.All(database.GetProperty("entities").EnumerateArray(), e => Assert.True(e.GetProperty("fields").GetArrayLength() > 0, $"{e.GetProperty("name")} has fields"));
        var migrations = database.GetProperty("migrations").EnumerateArray().Select(m => m.GetString()!).ToList();
        foreach (var table in new[] { "users", "products", "orders" })
        {
            Assert.Contains(migrations, m => m.StartsWith($"CREATE TABLE {table} (", StringComparison.Ordinal));
        }
    }
}
