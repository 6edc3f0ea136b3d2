namespace Builder.Contracts;

/// <summary>The server → client events of the protocol document (and the few beyond it).</summary>
public static class EventTypes
{
    public const string AgentStatusUpdate = "agent:status:update";
    public const string AgentOutput = "agent:output";
    public const string AgentError = "agent:error";
    public const string BuildStarted = "build:started";
    public const string BuildProgress = "build:progress";
    public const string BuildCompleted = "build:completed";
    public const string BuildFailed = "build:failed";
    public const string BuildCancelled = "build:cancelled";
    public const string DecisionRequired = "user:decision:required";
    public const string DecisionResolved = "user:decision:resolved";
    public const string DeploymentProgress = "deployment:progress";
    public const string DeploymentSuccess = "deployment:success";
    public const string DeploymentFailed = "deployment:failed";
    public const string Error = "error";

    public static readonly string[] AgentTypes = ["ui", "backend", "database", "integration", "deployment"];
    public static readonly string[] AgentStatuses = ["idle", "working", "waiting", "completed", "failed"];
    public static readonly string[] DeploymentStages = ["building", "deploying", "health-check"];

    /// <summary>Events a producer may publish through the API (decisions go through their own API).</summary>
    public static readonly string[] Publishable =
    [
        AgentStatusUpdate, AgentOutput, AgentError, BuildStarted, BuildProgress, BuildCompleted, BuildFailed,
        BuildCancelled, DeploymentProgress, DeploymentSuccess, DeploymentFailed, Error,
    ];
}

/// <summary>One invalid field of a payload: its JSON path and what is wrong.</summary>
public sealed record FieldError(string Field, string Message);
