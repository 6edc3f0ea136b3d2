using System.Text.Json;

namespace Builder.Runner;

// The payloads the runner publishes, as the protocol document shapes them (camelCase, nulls left out).

/// <summary><c>build:started</c>.</summary>
internal sealed record BuildStartedPayload(string ProjectId, string BuildId, double EstimatedDuration, IReadOnlyList<string> Phases, string? StartedBy);

/// <summary><c>build:progress</c>.</summary>
internal sealed record BuildProgressPayload(string ProjectId, string BuildId, string CurrentPhase, int PhaseProgress, int OverallProgress, string Message, double EstimatedTimeRemaining);

/// <summary><c>build:completed</c>.</summary>
internal sealed record BuildCompletedPayload(string ProjectId, string BuildId, double Duration, string PreviewUrl, IReadOnlyDictionary<string, int> Stats);

/// <summary><c>build:failed</c>.</summary>
internal sealed record BuildFailedPayload(string ProjectId, string BuildId, BuildError Error);

/// <summary><c>build:cancelled</c>.</summary>
internal sealed record BuildCancelledPayload(string ProjectId, string BuildId, string CancelledBy, string Phase);

/// <summary>The error of <c>build:failed</c> and <c>deployment:failed</c>.</summary>
internal sealed record BuildError(string Code, string Phase, string Message, object Details, IReadOnlyList<string> Suggestions);

/// <summary><c>agent:status:update</c>.</summary>
internal sealed record AgentStatusPayload(string AgentId, string AgentType, string Status, string? CurrentTask = null, int? Progress = null, string? Message = null);

/// <summary><c>agent:output</c>.</summary>
internal sealed record AgentOutputPayload(string AgentId, string AgentType, JsonElement Output, string Summary);

/// <summary><c>agent:error</c>.</summary>
internal sealed record AgentErrorPayload(string AgentId, string AgentType, AgentError Error);

/// <summary>The error of <c>agent:error</c>.</summary>
internal sealed record AgentError(string Code, string Message, object Details, bool Retryable, int RetryCount);

/// <summary><c>deployment:progress</c>.</summary>
internal sealed record DeploymentProgressPayload(string DeploymentId, string Environment, string Stage, int Progress, string Message);

/// <summary><c>deployment:success</c>.</summary>
internal sealed record DeploymentSuccessPayload(string DeploymentId, string Environment, string Url, string HealthStatus, double Duration);

/// <summary><c>deployment:failed</c>.</summary>
internal sealed record DeploymentFailedPayload(string ProjectId, string DeploymentId, string Environment, BuildError Error);
