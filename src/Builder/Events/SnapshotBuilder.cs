using System.Text.Json;
using System.Text.Json.Nodes;
using Builder.Contracts;
using Builder.Decisions;

namespace Builder.Events;

/// <summary>
/// Folds a project's log into its current state for a client that joins without (usable)
/// <c>lastSeq</c>: each agent's last status and progress, the current build, pending decisions
/// with the time left, the latest deployment.
/// </summary>
public sealed class SnapshotBuilder(IEventLog log, DecisionService decisions, TimeProvider time)
{
    private const int PageSize = 1000;
    private const int MaxEvents = 200_000;

    public async Task<JsonObject> BuildAsync(string projectId, CancellationToken cancellationToken = default)
    {
        var agents = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        JsonObject? build = null;
        JsonObject? deployment = null;
        long seq = 0;
        var read = 0;
        while (read < MaxEvents)
        {
            var page = await log.ReadAsync(projectId, seq, PageSize, cancellationToken);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var e in page)
            {
                Fold(e, agents, ref build, ref deployment);
                seq = e.Seq;
            }

            read += page.Count;
        }

        var now = time.GetUtcNow();
        var pending = new JsonArray();
        foreach (var d in await decisions.PendingAsync(projectId, cancellationToken))
        {
            pending.Add(new JsonObject
            {
                ["decisionId"] = d.DecisionId,
                ["agentId"] = d.AgentId,
                ["question"] = d.Question,
                ["options"] = JsonSerializer.SerializeToNode(d.Options, StoreJson.Options),
                ["timeout"] = d.TimeoutSeconds,
                ["defaultOptionId"] = d.DefaultOptionId,
                ["timeLeft"] = Math.Max(0, (int)Math.Ceiling((d.Deadline - now).TotalSeconds)),
            });
        }

        var agentArray = new JsonArray();
        foreach (var agent in agents.Values)
        {
            agentArray.Add(agent);
        }

        return new JsonObject
        {
            ["projectId"] = projectId,
            ["seq"] = seq,
            ["agents"] = agentArray,
            ["build"] = build,
            ["pendingDecisions"] = pending,
            ["deployment"] = deployment,
        };
    }

    private static void Fold(EventEnvelope e, Dictionary<string, JsonObject> agents, ref JsonObject? build, ref JsonObject? deployment)
    {
        var p = e.Payload;
        switch (e.Type)
        {
            case EventTypes.AgentStatusUpdate:
            case EventTypes.AgentOutput:
            case EventTypes.AgentError:
                var id = p.GetProperty("agentId").GetString()!;
                if (!agents.TryGetValue(id, out var agent))
                {
                    agent = new JsonObject { ["agentId"] = id };
                    agents[id] = agent;
                }

                agent["agentType"] = p.GetProperty("agentType").GetString();
                agent["updatedAt"] = e.Timestamp;
                agent["seq"] = e.Seq;
                if (e.Type == EventTypes.AgentStatusUpdate)
                {
                    foreach (var name in new[] { "status", "currentTask", "progress", "message" })
                    {
                        if (p.TryGetProperty(name, out var value))
                        {
                            agent[name] = JsonNode.Parse(value.GetRawText());
                        }
                    }
                }
                else if (e.Type == EventTypes.AgentOutput)
                {
                    agent["lastOutputSummary"] = p.GetProperty("summary").GetString();
                }
                else
                {
                    agent["lastError"] = JsonNode.Parse(p.GetProperty("error").GetRawText());
                }

                break;
            case EventTypes.BuildStarted:
                build = new JsonObject
                {
                    ["state"] = "running",
                    ["startedAt"] = e.Timestamp,
                    ["phases"] = JsonNode.Parse(p.GetProperty("phases").GetRawText()),
                    ["estimatedDuration"] = JsonNode.Parse(p.GetProperty("estimatedDuration").GetRawText()),
                    ["overallProgress"] = 0,
                };
                break;
            case EventTypes.BuildProgress:
                build ??= new JsonObject { ["state"] = "running" };
                foreach (var name in new[] { "currentPhase", "phaseProgress", "overallProgress", "message", "estimatedTimeRemaining" })
                {
                    if (p.TryGetProperty(name, out var value))
                    {
                        build[name] = JsonNode.Parse(value.GetRawText());
                    }
                }

                break;
            case EventTypes.BuildCompleted:
                build ??= [];
                build["state"] = "completed";
                build["overallProgress"] = 100;
                build["result"] = JsonNode.Parse(p.GetRawText());
                break;
            case EventTypes.BuildFailed:
                build ??= [];
                build["state"] = "failed";
                build["error"] = JsonNode.Parse(p.GetProperty("error").GetRawText());
                break;
            case EventTypes.BuildCancelled:
                build ??= [];
                build["state"] = "cancelled";
                break;
            case EventTypes.DeploymentProgress:
                deployment = JsonNode.Parse(p.GetRawText())!.AsObject();
                deployment["state"] = "running";
                break;
            case EventTypes.DeploymentSuccess:
                deployment = JsonNode.Parse(p.GetRawText())!.AsObject();
                deployment["state"] = "succeeded";
                break;
            case EventTypes.DeploymentFailed:
                deployment = JsonNode.Parse(p.GetRawText())!.AsObject();
                deployment["state"] = "failed";
                break;
        }
    }
}
