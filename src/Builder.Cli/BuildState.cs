using System.Text.Json;

namespace Builder.Cli;

/// <summary>One agent as the watch view shows it.</summary>
public sealed class AgentView
{
    public required string AgentId { get; init; }

    public string AgentType { get; set; } = "?";

    public string Status { get; set; } = "idle";

    public int Progress { get; set; }

    public string? Task { get; set; }

    public string? Message { get; set; }

    public string? LastError { get; set; }
}

/// <summary>A decision asked during the build.</summary>
public sealed record DecisionView(string DecisionId, string Question, IReadOnlyList<(string Id, string Label)> Options)
{
    public string? Selected { get; set; }

    public string? ResolvedBy { get; set; }
}

/// <summary>
/// A project's build as the events of the protocol fold it: the agents, the build's phase and
/// progress, the decisions asked, the deployment and the result. Fed with the <c>project:snapshot</c>
/// of a join and then with each live or replayed event (whose <c>seq</c> it keeps for a resume).
/// </summary>
public sealed class BuildState
{
    public Dictionary<string, AgentView> Agents { get; } = new(StringComparer.Ordinal);

    public List<DecisionView> Decisions { get; } = [];

    public List<string> Phases { get; } = [];

    /// <summary>none, running, completed, failed or cancelled.</summary>
    public string BuildStatus { get; private set; } = "none";

    public string? Phase { get; private set; }

    public int PhaseProgress { get; private set; }

    public int OverallProgress { get; private set; }

    public string? BuildMessage { get; private set; }

    public string? Result { get; private set; }

    /// <summary>none, running, succeeded or failed.</summary>
    public string DeploymentStatus { get; private set; } = "none";

    public string? DeploymentStage { get; private set; }

    public int DeploymentProgress { get; private set; }

    public string? DeploymentMessage { get; private set; }

    /// <summary>Events folded (each seq once).</summary>
    public long Folded { get; private set; }

    /// <summary>Events received again (a seq already folded): a resume that replayed too much.</summary>
    public long Repeated { get; private set; }

    /// <summary>Seqs skipped between two folded events: a resume that replayed too little.</summary>
    public long Missing { get; private set; }

    /// <summary>The seq of the last event folded (the <c>lastSeq</c> of a resume).</summary>
    public long LastSeq { get; private set; }

    /// <summary>Folds a <c>project:snapshot</c>: the state of the project when the view joined.</summary>
    public void ApplySnapshot(JsonElement snapshot)
    {
        LastSeq = Long(snapshot, "seq") ?? LastSeq;
        if (snapshot.TryGetProperty("agents", out var agents) && agents.ValueKind == JsonValueKind.Array)
        {
            foreach (var a in agents.EnumerateArray())
            {
                var agent = Agent(Str(a, "agentId") ?? "?");
                agent.AgentType = Str(a, "agentType") ?? agent.AgentType;
                agent.Status = Str(a, "status") ?? agent.Status;
                agent.Progress = (int)(Long(a, "progress") ?? agent.Progress);
                agent.Task = Str(a, "currentTask") ?? agent.Task;
                agent.Message = Str(a, "message") ?? agent.Message;
            }
        }

        if (snapshot.TryGetProperty("build", out var build) && build.ValueKind == JsonValueKind.Object)
        {
            BuildStatus = Str(build, "state") ?? BuildStatus;
            Phase = Str(build, "currentPhase") ?? Phase;
            PhaseProgress = (int)(Long(build, "phaseProgress") ?? PhaseProgress);
            OverallProgress = (int)(Long(build, "overallProgress") ?? OverallProgress);
            BuildMessage = Str(build, "message") ?? BuildMessage;
            SetPhases(build);
        }

        if (snapshot.TryGetProperty("pendingDecisions", out var pending) && pending.ValueKind == JsonValueKind.Array)
        {
            foreach (var d in pending.EnumerateArray())
            {
                AddDecision(d);
            }
        }

        if (snapshot.TryGetProperty("deployment", out var deployment) && deployment.ValueKind == JsonValueKind.Object)
        {
            ApplyDeploymentProgress(deployment);
        }
    }

    /// <summary>Folds one event envelope <c>{type, timestamp, payload, seq}</c>; returns false when it is older than what was folded.</summary>
    public bool Apply(string name, JsonElement envelope)
    {
        if (envelope.ValueKind != JsonValueKind.Object)
        {
            return false;
        }

        if (Long(envelope, "seq") is { } seq)
        {
            // a logged event carries its eventId; project-joined only the seq it is live from
            var logged = envelope.TryGetProperty("eventId", out _);
            if (seq <= LastSeq)
            {
                Repeated += logged ? 1 : 0;
                return false;
            }

            if (logged)
            {
                Missing += LastSeq > 0 && seq > LastSeq + 1 ? seq - LastSeq - 1 : 0;
                Folded++;
            }

            LastSeq = seq;
        }

        if (!envelope.TryGetProperty("payload", out var p) || p.ValueKind != JsonValueKind.Object)
        {
            return true;
        }

        switch (name)
        {
            case "agent:status:update":
                {
                    var agent = Agent(Str(p, "agentId") ?? "?");
                    agent.AgentType = Str(p, "agentType") ?? agent.AgentType;
                    agent.Status = Str(p, "status") ?? agent.Status;
                    agent.Progress = (int)(Long(p, "progress") ?? agent.Progress);
                    agent.Task = Str(p, "currentTask") ?? agent.Task;
                    agent.Message = Str(p, "message") ?? agent.Message;
                    break;
                }

            case "agent:output":
                {
                    var agent = Agent(Str(p, "agentId") ?? "?");
                    agent.AgentType = Str(p, "agentType") ?? agent.AgentType;
                    agent.Message = Str(p, "summary") ?? agent.Message;
                    break;
                }

            case "agent:error":
                {
                    var agent = Agent(Str(p, "agentId") ?? "?");
                    agent.AgentType = Str(p, "agentType") ?? agent.AgentType;
                    if (p.TryGetProperty("error", out var error))
                    {
                        agent.LastError = $"{Str(error, "code")}: {Str(error, "message")}";
                    }

                    break;
                }

            case "build:started":
                Agents.Clear();
                Decisions.Clear();
                BuildStatus = "running";
                Result = null;
                Phase = null;
                PhaseProgress = 0;
                OverallProgress = 0;
                DeploymentStatus = "none";
                DeploymentStage = null;
                DeploymentProgress = 0;
                DeploymentMessage = null;
                SetPhases(p);
                break;
            case "build:progress":
                BuildStatus = "running";
                Phase = Str(p, "currentPhase") ?? Phase;
                PhaseProgress = (int)(Long(p, "phaseProgress") ?? PhaseProgress);
                OverallProgress = (int)(Long(p, "overallProgress") ?? OverallProgress);
                BuildMessage = Str(p, "message") ?? BuildMessage;
                break;
            case "build:completed":
                BuildStatus = "completed";
                OverallProgress = 100;
                Result = $"completed in {Long(p, "duration") ?? 0} s"
                    + (p.TryGetProperty("stats", out var stats) && stats.ValueKind == JsonValueKind.Object
                        ? " (" + string.Join(", ", stats.EnumerateObject().Select(s => $"{s.Name} {s.Value}")) + ")"
                        : string.Empty)
                    + (Str(p, "previewUrl") is { } preview ? $", preview {preview}" : string.Empty);
                break;
            case "build:failed":
                BuildStatus = "failed";
                Result = p.TryGetProperty("error", out var failure)
                    ? $"failed in phase {Str(failure, "phase") ?? "?"}: {Str(failure, "message")}"
                    : "failed";
                break;
            case "build:cancelled":
                BuildStatus = "cancelled";
                Result = "cancelled" + (Str(p, "cancelledBy") is { } by ? $" by {by}" : string.Empty);
                break;
            case "user:decision:required":
                AddDecision(p);
                break;
            case "user:decision:resolved":
                if (Decisions.FirstOrDefault(d => d.DecisionId == Str(p, "decisionId")) is { } resolved)
                {
                    resolved.Selected = Str(p, "selectedOptionId");
                    resolved.ResolvedBy = Str(p, "resolvedBy");
                }

                break;
            case "deployment:progress":
                ApplyDeploymentProgress(p);
                break;
            case "deployment:success":
                DeploymentStatus = "succeeded";
                DeploymentProgress = 100;
                DeploymentMessage = $"{Str(p, "url")} ({Str(p, "healthStatus")}, {Long(p, "duration") ?? 0} s)";
                break;
            case "deployment:failed":
                DeploymentStatus = "failed";
                DeploymentMessage = p.TryGetProperty("error", out var deployError) ? Str(deployError, "message") : "failed";
                break;
        }

        return true;
    }

    /// <summary>True once the build reached its result (completed, failed, cancelled).</summary>
    public bool BuildEnded => BuildStatus is "completed" or "failed" or "cancelled";

    private void ApplyDeploymentProgress(JsonElement p)
    {
        DeploymentStatus = "running";
        DeploymentStage = Str(p, "stage") ?? DeploymentStage;
        DeploymentProgress = (int)(Long(p, "progress") ?? DeploymentProgress);
        DeploymentMessage = Str(p, "message") ?? DeploymentMessage;
    }

    private void AddDecision(JsonElement p)
    {
        var id = Str(p, "decisionId");
        if (id is null || Decisions.Any(d => d.DecisionId == id))
        {
            return;
        }

        var options = p.TryGetProperty("options", out var o) && o.ValueKind == JsonValueKind.Array
            ? o.EnumerateArray().Select(x => (Str(x, "id") ?? "?", Str(x, "label") ?? string.Empty)).ToList()
            : [];
        Decisions.Add(new DecisionView(id, Str(p, "question") ?? string.Empty, options));
    }

    private void SetPhases(JsonElement p)
    {
        if (p.TryGetProperty("phases", out var phases) && phases.ValueKind == JsonValueKind.Array)
        {
            Phases.Clear();
            Phases.AddRange(phases.EnumerateArray().Select(x => x.GetString() ?? "?"));
        }
    }

    private AgentView Agent(string id)
    {
        if (!Agents.TryGetValue(id, out var agent))
        {
            agent = new AgentView { AgentId = id };
            Agents[id] = agent;
        }

        return agent;
    }

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static long? Long(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) ? (long)d : null;
}
