using Builder.Tests.Infrastructure;

namespace Builder.Tests;

/// <summary>
/// The protocol document's client example, run by the official Node socket.io-client
/// (node/client_example.mjs) against the gateway; this test plays the producers.
/// </summary>
public sealed class ClientExampleTests
{
    private static readonly TimeSpan StepWait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Document_client_example_receives_every_event_answers_a_decision_and_rejoins_after_reconnect()
    {
        Assert.True(NodeScript.ClientInstalled, $"socket.io-client is not installed: run `npm ci` in {NodeScript.InteropDir}");
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        const string project = "project-3f9c";
        var token = gateway.Token("user-42", [project], username: "john_doe");

        await using var node = NodeScript.Start("client_example.mjs", gateway.Url.ToString().TrimEnd('/'), token, project, "user-42", "john_doe");
        var joined = await node.StepAsync("joined", StepWait);
        Assert.Equal(1, joined.GetProperty("members").GetInt32());

        // one event of each type of the document, in the order the script expects them
        await gateway.PublishAsync(project, "agent:status:update", new { agentId = "agent-ui-1", agentType = "ui", status = "working", currentTask = "Generating UI layout for Dashboard page", progress = 65, message = "Selected 5 components from library" });
        await gateway.PublishAsync(project, "agent:output", new
        {
            agentId = "agent-db-1",
            agentType = "database",
            output = new
            {
                entities = new object[] { new { name = "User", fields = new object[] { new { name = "id", type = "uuid" } }, relationships = Array.Empty<object>() } },
                migrations = new[] { "CREATE TABLE users (id uuid primary key)" },
            },
            summary = "Created 3 data tables: User, Product, Order",
        });
        await gateway.PublishAsync(project, "agent:error", new { agentId = "agent-be-1", agentType = "backend", error = new { code = "AI_API_TIMEOUT", message = "AI service timeout after 30s", details = new { service = "llm" }, retryable = true, retryCount = 1 } });
        await gateway.PublishAsync(project, "build:started", new { estimatedDuration = 120, phases = new[] { "analyze", "design", "generate", "validate" } });
        await gateway.PublishAsync(project, "build:progress", new { currentPhase = "design", phaseProgress = 75, overallProgress = 45, message = "Database schema design completed", estimatedTimeRemaining = 75 });
        await gateway.PublishAsync(project, "build:completed", new { duration = 118, previewUrl = $"http://localhost:3000/preview/{project}", stats = new { componentsGenerated = 12, apiEndpointsCreated = 8, dataModelsCreated = 3 } });
        await gateway.PublishAsync(project, "build:failed", new { error = new { phase = "generate", message = "Failed to generate API endpoints", details = new { endpoint = "/orders" }, suggestions = new[] { "Check if requirements are clear enough", "Try simplifying the feature scope" } } });
        await gateway.PublishAsync(project, "deployment:progress", new { deploymentId = "deployment-1", environment = "test", stage = "building", progress = 40, message = "Building Docker image..." });
        await gateway.PublishAsync(project, "deployment:success", new { deploymentId = "deployment-1", environment = "test", url = "https://test-project-xyz.aibuilder.app", healthStatus = "healthy", duration = 245 });
        await gateway.PublishAsync(project, "error", new { code = "ERROR_CODE", message = "Human-readable error message", details = new { }, recoverable = true, actions = new[] { new { label = "Retry", action = "retry" }, new { label = "Cancel", action = "cancel" } } });
        var decisionId = await gateway.CreateDecisionAsync(project, TestGateway.TwoOptionDecision(agentId: "agent-ui-1"));

        var resolved = await node.StepAsync("resolved", StepWait);
        Assert.Equal(decisionId, resolved.GetProperty("decisionId").GetString());
        var (_, decision) = await gateway.GetDecisionAsync(decisionId);
        Assert.Equal("resolved", decision.GetProperty("status").GetString());
        Assert.Equal("option-2", decision.GetProperty("resolution").GetProperty("selectedOptionId").GetString());
        Assert.Equal("user-42", decision.GetProperty("resolution").GetProperty("userId").GetString());

        var rejoined = await node.StepAsync("rejoined", StepWait);
        Assert.Equal(resolved.GetProperty("seq").GetInt64(), rejoined.GetProperty("seq").GetInt64());
        await gateway.PublishAsync(project, "agent:status:update", new { agentId = "agent-ui-1", agentType = "ui", status = "completed", progress = 100, message = "after reconnect" });

        await node.StepAsync("done", StepWait);
        Assert.True(await node.ExitAsync(StepWait) == 0, "node script failed:\n" + node.Output);
    }
}
