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
    private readonly ConcurrentDictionary<FaultSpec, int> _faultsLeft = new();
    private readonly EventPublisher _publisher;
    private readonly DecisionService _decisions;
    private readonly TimeProvider _pacing;
    private readonly Lock _progressGate = new();
    private string[] _phaseAgents = [];
    private int _overall;
    private bool _dirty;

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
        foreach (var fault in request.Faults)
        {
            _faultsLeft[fault] = fault.Kind == "fatal" ? int.MaxValue : Math.Max(1, fault.Count);
        }
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
        else if (phaseProgress > 0)
        {
            _dirty = true;
        }

        return (phaseProgress, _overall);
    }

    /// <summary>The progress to publish now, or null when nothing changed since the last one.</summary>
    public Dictionary<string, object?>? TakeProgress(bool force, string message)
    {
        lock (_progressGate)
        {
            var (phaseProgress, overall) = Recompute();
            if (!_dirty && !force)
            {
                return null;
            }

            _dirty = false;
            var elapsed = ElapsedSimulated;
            var remaining = overall <= 0 ? EstimatedSeconds : Math.Max(0, (elapsed * (100 - overall) / overall));
            return new Dictionary<string, object?>
            {
                ["projectId"] = ProjectId,
                ["buildId"] = BuildId,
                ["currentPhase"] = Phase,
                ["phaseProgress"] = phaseProgress,
                ["overallProgress"] = overall,
                ["message"] = message,
                ["estimatedTimeRemaining"] = Math.Round(remaining),
            };
        }
    }

    public async Task ReportAsync(AgentContext agent, string status, string? currentTask, int progress, string? message)
    {
        Cancellation.ThrowIfCancellationRequested();
        lock (_progressGate)
        {
            if (agent.Phase == Phase)
            {
                _agentProgress.AddOrUpdate(agent.AgentId, progress, (_, old) => Math.Max(old, progress));
                _dirty = true;
            }
        }

        await PublishAsync(EventTypes.AgentStatusUpdate, new Dictionary<string, object?>
        {
            ["agentId"] = agent.AgentId,
            ["agentType"] = agent.AgentType,
            ["status"] = status,
            ["currentTask"] = currentTask,
            ["progress"] = progress,
            ["message"] = message,
        });
    }

    public async Task OutputAsync(AgentContext agent, object output, string summary)
    {
        var element = JsonSerializer.SerializeToElement(output, RunnerJson.Options);
        _outputs[agent.AgentType] = element;
        await PublishAsync(EventTypes.AgentOutput, new Dictionary<string, object?>
        {
            ["agentId"] = agent.AgentId,
            ["agentType"] = agent.AgentType,
            ["output"] = element,
            ["summary"] = summary,
        });
    }

    public async Task<string> AskAsync(AgentContext agent, string question, IReadOnlyList<DecisionOption> options, int timeoutSeconds, string? defaultOptionId)
    {
        await ReportAsync(agent, "waiting", "Waiting for your decision: " + question, _agentProgress.GetValueOrDefault(agent.AgentId), null);
        var decision = await _decisions.CreateAsync(ProjectId, new DecisionRequest(agent.AgentId, question, options, timeoutSeconds, defaultOptionId), Cancellation);
        DecisionResolution? resolution = null;
        while (resolution is null)
        {
            resolution = await _decisions.WaitAsync(decision.DecisionId, TimeSpan.FromHours(1), Cancellation);
        }

        _choices[question] = resolution.SelectedOptionId;
        return resolution.SelectedOptionId;
    }

    public async Task DeploymentProgressAsync(DeploymentContext deployment, string stage, int progress, string message)
    {
        Cancellation.ThrowIfCancellationRequested();
        await PublishAsync(EventTypes.DeploymentProgress, new Dictionary<string, object?>
        {
            ["deploymentId"] = deployment.DeploymentId,
            ["environment"] = deployment.Environment,
            ["stage"] = stage,
            ["progress"] = progress,
            ["message"] = message,
        });
    }

    public void ThrowInjectedFault(AgentContext agent) => ThrowInjectedFault(agent.Phase, agent.AgentType);

    public void ThrowInjectedFault(string phase, string agentType)
    {
        foreach (var (fault, _) in _faultsLeft)
        {
            if (fault.Phase != phase || (fault.AgentType is not null && fault.AgentType != agentType))
            {
                continue;
            }

            var left = _faultsLeft.AddOrUpdate(fault, 0, (_, n) => n - 1);
            if (left < 0)
            {
                continue;
            }

            if (fault.Kind == "fatal")
            {
                throw new AgentException("GENERATION_FAILED", $"The {agentType} agent could not complete the {phase} phase.", new { injected = true, phase, agentType }, retryable: false);
            }

            throw new AgentException("AI_API_TIMEOUT", "AI service timeout after 30s", new { injected = true, phase, agentType, attemptsLeftToFail = left }, retryable: true);
        }
    }

    public Task PublishAsync(string type, Dictionary<string, object?> payload)
    {
        foreach (var key in payload.Where(p => p.Value is null).Select(p => p.Key).ToList())
        {
            payload.Remove(key);
        }

        return PublishCheckedAsync(type, payload);
    }

    private async Task PublishCheckedAsync(string type, Dictionary<string, object?> payload)
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
