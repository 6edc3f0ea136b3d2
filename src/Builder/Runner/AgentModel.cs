using System.Text.Json;
using Builder.Events;

namespace Builder.Runner;

/// <summary>The phases of a build, in order.</summary>
public static class BuildPhases
{
    public const string Analyze = "analyze";
    public const string Design = "design";
    public const string Generate = "generate";
    public const string Validate = "validate";

    public static readonly string[] All = [Analyze, Design, Generate, Validate];
}

/// <summary>One agent of a build: it works in some phases and reports through its context.</summary>
public interface IAgent
{
    /// <summary>ui, backend, database, integration or deployment.</summary>
    string AgentType { get; }

    /// <summary>The phases this agent takes part in.</summary>
    IReadOnlyCollection<string> Phases { get; }

    /// <summary>How long (in simulated seconds) the agent expects a phase to take, for estimates.</summary>
    double EstimateSeconds(string phase);

    /// <summary>Agents of a phase run in groups by this order; those of one group run in parallel.</summary>
    int OrderIn(string phase) => 0;

    Task RunPhaseAsync(string phase, AgentContext context);
}

/// <summary>The agent that deploys a built app.</summary>
public interface IDeploymentAgent
{
    Task<DeploymentResult> DeployAsync(DeploymentContext context);
}

public sealed record DeploymentResult(string Url, string HealthStatus);

/// <summary>
/// An agent's failure. Retryable failures are retried with backoff up to the configured count;
/// others (or retries exhausted) fail the build.
/// </summary>
public sealed class AgentException : Exception
{
    public AgentException()
        : this("AGENT_FAILED", "The agent failed.", null, false)
    {
    }

    public AgentException(string message)
        : this("AGENT_FAILED", message, null, false)
    {
    }

    public AgentException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = "AGENT_FAILED";
    }

    public AgentException(string code, string message, object? details, bool retryable)
        : base(message)
    {
        Code = code;
        Details = details;
        Retryable = retryable;
    }

    public string Code { get; } = "AGENT_FAILED";

    public object? Details { get; }

    public bool Retryable { get; }
}

/// <summary>A fault to inject into a simulated build.</summary>
public sealed record FaultSpec
{
    /// <summary>"transient" (retryable, then success) or "fatal".</summary>
    public string Kind { get; init; } = "transient";

    /// <summary>The phase where it strikes (analyze, design, generate, validate, deploy).</summary>
    public string Phase { get; init; } = BuildPhases.Generate;

    /// <summary>The agent type it strikes; any agent of the phase when null.</summary>
    public string? AgentType { get; init; }

    /// <summary>For transient faults: how many attempts fail before one succeeds.</summary>
    public int Count { get; init; } = 1;
}

/// <summary>What a build is asked to do.</summary>
public sealed record BuildRequest
{
    public string Requirements { get; init; } = string.Empty;

    public bool Simulate { get; init; } = true;

    public bool Deploy { get; init; }

    /// <summary>Simulated time runs this many times faster than real time.</summary>
    public double Speed { get; init; } = 1;

    public int Seed { get; init; }

    public IReadOnlyList<FaultSpec> Faults { get; init; } = [];

    /// <summary>Who started it (user id or "api").</summary>
    public string StartedBy { get; init; } = "api";
}

/// <summary>What an agent uses to report, publish, fail and ask.</summary>
public sealed class AgentContext
{
    private readonly BuildExecution _build;

    internal AgentContext(BuildExecution build, string agentId, string agentType, string phase)
    {
        _build = build;
        AgentId = agentId;
        AgentType = agentType;
        Phase = phase;
    }

    public string ProjectId => _build.ProjectId;

    public string BuildId => _build.BuildId;

    public string AgentId { get; }

    public string AgentType { get; }

    public string Phase { get; }

    public BuildRequest Request => _build.Request;

    public CancellationToken CancellationToken => _build.Cancellation;

    /// <summary>Outputs published so far in this build, by agent type.</summary>
    public IReadOnlyDictionary<string, JsonElement> Outputs => _build.Outputs;

    /// <summary>Decisions answered so far in this build, by question.</summary>
    public IReadOnlyDictionary<string, string> Choices => _build.Choices;

    /// <summary>Publishes agent:status:update and feeds the build's progress.</summary>
    public Task ReportAsync(string status, string? currentTask, int progress, string? message = null) =>
        _build.ReportAsync(this, status, currentTask, Math.Clamp(progress, 0, 100), message);

    /// <summary>Publishes agent:output; the build's stats are counted from these outputs.</summary>
    public Task OutputAsync(object output, string summary) => _build.OutputAsync(this, output, summary);

    /// <summary>Asks the user; returns the chosen option id (the default when the decision times out).</summary>
    public Task<string> AskAsync(string question, IReadOnlyList<DecisionOption> options, int timeoutSeconds, string? defaultOptionId = null) =>
        _build.AskAsync(this, question, options, timeoutSeconds, defaultOptionId);

    /// <summary>Lets simulated time pass (scaled by the build's speed).</summary>
    public Task WorkAsync(double simulatedSeconds) => _build.PaceAsync(simulatedSeconds);

    /// <summary>Throws the fault injected for this agent and phase, if any is left.</summary>
    public void ThrowInjectedFault() => _build.ThrowInjectedFault(this);
}

/// <summary>What the deployment agent uses.</summary>
public sealed class DeploymentContext
{
    private readonly BuildExecution _build;

    internal DeploymentContext(BuildExecution build, string deploymentId, string environment)
    {
        _build = build;
        DeploymentId = deploymentId;
        Environment = environment;
    }

    /// <summary>The deployment agent's id on its card.</summary>
    public const string AgentId = "agent-deployment";

    /// <summary>The deployment agent's type.</summary>
    public const string AgentType = "deployment";

    public string ProjectId => _build.ProjectId;

    public string DeploymentId { get; }

    public string Environment { get; }

    public BuildRequest Request => _build.Request;

    public IReadOnlyDictionary<string, JsonElement> Outputs => _build.Outputs;

    public CancellationToken CancellationToken => _build.Cancellation;

    /// <summary>Publishes the deployment agent's agent:status:update (its card), as the build's agents do.</summary>
    public Task ReportAsync(string status, string? currentTask, int progress, string? message = null) =>
        _build.ReportAsync(AgentId, AgentType, null, status, currentTask, Math.Clamp(progress, 0, 100), message);

    /// <summary>Publishes the deployment agent's agent:output.</summary>
    public Task OutputAsync(object output, string summary) => _build.OutputAsync(AgentId, AgentType, output, summary);

    /// <summary>Publishes deployment:progress.</summary>
    public Task ProgressAsync(string stage, int progress, string message) => _build.DeploymentProgressAsync(this, stage, Math.Clamp(progress, 0, 100), message);

    public Task WorkAsync(double simulatedSeconds) => _build.PaceAsync(simulatedSeconds);

    public void ThrowInjectedFault() => _build.ThrowInjectedFault("deploy", AgentType);
}
