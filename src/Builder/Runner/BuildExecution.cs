using System.Collections.Concurrent;
using System.Text.Json;
using Builder.Contracts;
using Builder.Decisions;
using Builder.Events;

namespace Builder.Runner;

/// <summary>The state of one running build: progress, outputs, choices, faults left to inject.</summary>
internal sealed class BuildExecution
{
    private readonly ConcurrentDictionary<string, int> _agentProgress = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, JsonElement> _outputs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _choices = new(StringComparer.Ordinal);
    private readonly int[] _faultsLeft;
    private readonly EventPublisher _publisher;
    private readonly DecisionService _decisions;
    private readonly TimeProvider _pacing;
    private readonly Lock _progressGate = new();
    private string[] _phaseAgents = [];
    private int _overall;
    private bool _dirty;
    private (string Phase, int PhaseProgress, int Overall, string Message) _lastPublished;

    public BuildExecution(string projectId, string buildId, BuildRequest request, EventPublisher publisher, DecisionService decisions, TimeProvider pacing, CancellationToken cancellation)
    {
        ProjectId = projectId;
        BuildId = buildId;
        Request = request;
        _publisher = publisher;
        _decisions = decisions;
        _pacing = pacing;
        Cancellation = cancellation;
        StartedAt = pacing.GetTimestamp();
        _faultsLeft = request.Faults.Select(f => f.Kind == "fatal" ? int.MaxValue : Math.Max(1, f.Count)).ToArray();
    }

    public string ProjectId { get; }

    public string BuildId { get; }

    public BuildRequest Request { get; }

    public CancellationToken Cancellation { get; }

    public long StartedAt { get; }

    public string Phase { get; private set; } = BuildPhases.Analyze;

    public int PhaseIndex { get; private set; }

    public double EstimatedSeconds { get; set; }

    public IReadOnlyDictionary<string, JsonElement> Outputs => _outputs;

    public IReadOnlyDictionary<string, string> Choices => _choices;

    public ConcurrentDictionary<string, string> RunningAgents { get; } = new(StringComparer.Ordinal);

    /// <summary>Each agent's last reported status (to settle the cards when a build ends early).</summary>
    public ConcurrentDictionary<string, string> LastStatus { get; } = new(StringComparer.Ordinal);

    /// <summary>Serializes taking and publishing this build's progress, so it reaches the log in order.</summary>
    public SemaphoreSlim ProgressGate { get; } = new(1, 1);

    /// <summary>"build" while the phases run, "deploy" during the deployment.</summary>
    public string Stage { get; set; } = "build";

    public string? DeploymentId { get; set; }

    /// <summary>Elapsed simulated seconds.</summary>
    public double ElapsedSimulated => _pacing.GetElapsedTime(StartedAt).TotalSeconds * Request.Speed;

    public int OverallProgress
    {
        get
        {
            lock (_progressGate)
            {
                return _overall;
            }
        }
    }

    public Task PaceAsync(double simulatedSeconds)
    {
        var real = TimeSpan.FromSeconds(simulatedSeconds / Math.Max(Request.Speed, 0.001));
        return real <= TimeSpan.Zero ? Task.CompletedTask : Task.Delay(real, _pacing, Cancellation);
    }

    public void EnterPhase(string phase, int index, IEnumerable<string> agentIds)
    {
        lock (_progressGate)
        {
            Phase = phase;
            PhaseIndex = index;
            _phaseAgents = agentIds.ToArray();
            _agentProgress.Clear();
            _dirty = true;
        }
    }

    public void CompletePhase()
    {
        lock (_progressGate)
        {
            foreach (var id in _phaseAgents)
            {
                _agentProgress[id] = 100;
            }

            Recompute();
        }
    }

    private (int Phase, int Overall) Recompute()
    {
        var sum = 0;
        foreach (var id in _phaseAgents)
        {
            sum += _agentProgress.GetValueOrDefault(id);
        }

        var phaseProgress = _phaseAgents.Length == 0 ? 100 : sum / _phaseAgents.Length;
        var overall = (int)Math.Floor(((PhaseIndex * 100.0) + phaseProgress) / BuildPhases.All.Length);
        if (overall > _overall)
        {
            _overall = overall;
            _dirty = true;
        }

        return (phaseProgress, _overall);
    }

    /// <summary>The progress to publish now, or null when nothing changed since the last one.</summary>
    public BuildProgressPayload? TakeProgress(bool force, string message)
    {
        lock (_progressGate)
        {
            var (phaseProgress, overall) = Recompute();
            var current = (Phase, phaseProgress, overall, message);
            if ((!_dirty && !force) || current == _lastPublished)
            {
                return null;
            }

            _dirty = false;
            _lastPublished = current;
            var elapsed = ElapsedSimulated;
            var remaining = overall <= 0 ? EstimatedSeconds : Math.Max(0, (elapsed * (100 - overall) / overall));
            return new BuildProgressPayload(ProjectId, BuildId, Phase, phaseProgress, overall, message, Math.Round(remaining));
        }
    }

    public Task ReportAsync(AgentContext agent, string status, string? currentTask, int progress, string? message) =>
        ReportAsync(agent.AgentId, agent.AgentType, agent.Phase, status, currentTask, progress, message);

    /// <summary>An agent's agent:status:update; <paramref name="phase"/> feeds the build's progress (null: the deployment, after the build).</summary>
    public async Task ReportAsync(string agentId, string agentType, string? phase, string status, string? currentTask, int progress, string? message)
    {
        Cancellation.ThrowIfCancellationRequested();
        if (phase is not null)
        {
            lock (_progressGate)
            {
                if (phase == Phase)
                {
                    _agentProgress.AddOrUpdate(agentId, progress, (_, old) => Math.Max(old, progress));
                    _dirty = true;
                }
            }
        }

        LastStatus[agentId] = status;
        await PublishAsync(EventTypes.AgentStatusUpdate, new AgentStatusPayload(agentId, agentType, status, currentTask, progress, message));
    }

    public Task OutputAsync(AgentContext agent, object output, string summary) => OutputAsync(agent.AgentId, agent.AgentType, output, summary);

    public async Task OutputAsync(string agentId, string agentType, object output, string summary)
    {
        Cancellation.ThrowIfCancellationRequested();
        var element = JsonSerializer.SerializeToElement(output, RunnerJson.Options);
        _outputs[agentType] = element;
        await PublishAsync(EventTypes.AgentOutput, new AgentOutputPayload(agentId, agentType, element, summary));
    }

    public async Task<string> AskAsync(AgentContext agent, string question, IReadOnlyList<DecisionOption> options, int timeoutSeconds, string? defaultOptionId)
    {
        await ReportAsync(agent, "waiting", "Waiting for your decision: " + question, _agentProgress.GetValueOrDefault(agent.AgentId), null);
        var decision = await _decisions.CreateAsync(ProjectId, new DecisionRequest(agent.AgentId, question, options, timeoutSeconds, defaultOptionId), Cancellation);
        DecisionResolution? resolution = null;
        try
        {
            while (resolution is null)
            {
                resolution = await _decisions.WaitAsync(decision.DecisionId, TimeSpan.FromHours(1), Cancellation);
            }
        }
        catch (OperationCanceledException)
        {
            // the build ended while the question was open: close the prompt for everyone
            await _decisions.WithdrawAsync(decision.DecisionId);
            throw;
        }

        if (resolution.SelectedOptionId is not { } selected)
        {
            throw new OperationCanceledException("The decision was withdrawn.", Cancellation);
        }

        _choices[question] = selected;
        return selected;
    }

    public async Task DeploymentProgressAsync(DeploymentContext deployment, string stage, int progress, string message)
    {
        Cancellation.ThrowIfCancellationRequested();
        await PublishAsync(EventTypes.DeploymentProgress, new DeploymentProgressPayload(deployment.DeploymentId, deployment.Environment, stage, progress, message));
    }

    public void ThrowInjectedFault(AgentContext agent) => ThrowInjectedFault(agent.Phase, agent.AgentType);

    public void ThrowInjectedFault(string phase, string agentType)
    {
        for (var i = 0; i < _faultsLeft.Length; i++)
        {
            var fault = Request.Faults[i];
            if (fault.Phase != phase || (fault.AgentType is not null && fault.AgentType != agentType))
            {
                continue;
            }

            if (Interlocked.Decrement(ref _faultsLeft[i]) < 0)
            {
                continue;
            }

            if (fault.Kind == "fatal")
            {
                throw new AgentException("GENERATION_FAILED", $"The {agentType} agent could not complete the {phase} phase.", new { injected = true, phase, agentType }, retryable: false);
            }

            throw new AgentException("AI_API_TIMEOUT", "AI service timeout after 30s", new { injected = true, phase, agentType, attemptsLeftToFail = _faultsLeft[i] }, retryable: true);
        }
    }

    /// <summary>Publishes one of the runner's typed payloads (nulls left out); an invalid one is a runner bug and throws.</summary>
    public async Task PublishAsync<T>(string type, T payload)
    {
        var result = await _publisher.PublishAsync(ProjectId, type, JsonSerializer.SerializeToElement(payload, RunnerJson.Options));
        if (!result.Ok)
        {
            throw new InvalidOperationException($"The runner produced an invalid {type}: " + string.Join("; ", result.Errors.Select(e => $"{e.Field} {e.Message}")));
        }
    }
}

internal static class RunnerJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
