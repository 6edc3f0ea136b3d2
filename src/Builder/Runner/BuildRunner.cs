using System.Collections.Concurrent;
using Builder.Contracts;
using Builder.Decisions;
using Builder.Events;
using Microsoft.Extensions.Logging;

namespace Builder.Runner;

/// <summary>Runner settings (configuration section Builder:Runner).</summary>
public sealed class RunnerOptions
{
    public int MaxConcurrentBuilds { get; set; } = 100;

    public int MaxRetries { get; set; } = 3;

    /// <summary>First retry delay in simulated seconds; doubled for each further retry.</summary>
    public double RetryBackoffSeconds { get; set; } = 2;

    /// <summary>At most this many build:progress events per real second per build.</summary>
    public double ProgressEventsPerSecond { get; set; } = 10;

    /// <summary>An outside agent reported "working" that says nothing for this long is failed.</summary>
    public int AgentLeaseSeconds { get; set; } = 60;

    public string PreviewBaseUrl { get; set; } = "http://localhost:3001/preview";

    /// <summary>
    /// Makes build:completed's previewUrl from <see cref="PreviewBaseUrl"/> and the project id (the
    /// gateway signs it); unset: <c>{PreviewBaseUrl}/{projectId}</c>. Not bound from configuration.
    /// </summary>
    public Func<string, string, string>? PreviewUrlFor { get; set; }
}

public enum StartOutcome
{
    Started,
    AlreadyRunning,
    TooManyBuilds,
}

public sealed record StartResult(StartOutcome Outcome, string BuildId);

/// <summary>
/// Runs builds: phases analyze → design → generate → validate, agents in parallel groups,
/// progress derived from the agents and coalesced, retries with backoff, failure with
/// suggestions, cancellation, and an optional deployment. One build per project at a time.
/// </summary>
public sealed class BuildRunner : IAsyncDisposable
{
    private static readonly string[] s_failureSuggestions =
    [
        "Check if requirements are clear enough",
        "Try simplifying the feature scope",
        "Start the build again: transient failures often pass on a new attempt",
    ];

    private const string ShutdownCanceller = "shutdown";

    private readonly ConcurrentDictionary<string, Running> _running = new(StringComparer.Ordinal);
    private int _reserved;
    private readonly Func<BuildRequest, IReadOnlyList<IAgent>> _agentsFor;
    private readonly Func<BuildRequest, IDeploymentAgent> _deployerFor;
    private readonly EventPublisher _publisher;
    private readonly DecisionService _decisions;
    private readonly IBuildStore _store;
    private readonly RunnerOptions _options;
    private readonly TimeProvider _pacing;
    private readonly ILogger<BuildRunner> _logger;

    public BuildRunner(Func<BuildRequest, IReadOnlyList<IAgent>> agentsFor, Func<BuildRequest, IDeploymentAgent> deployerFor, EventPublisher publisher, DecisionService decisions, IBuildStore store, RunnerOptions options, TimeProvider pacing, ILogger<BuildRunner> logger)
    {
        _agentsFor = agentsFor;
        _deployerFor = deployerFor;
        _publisher = publisher;
        _decisions = decisions;
        _store = store;
        _options = options;
        _pacing = pacing;
        _logger = logger;
    }

    /// <summary>Agent ids of the builds running in this process (not subject to leases).</summary>
    public bool IsInternalAgent(string projectId, string agentId) =>
        _running.TryGetValue(projectId, out var running) && running.Execution.RunningAgents.ContainsKey(agentId);

    public string? RunningBuildId(string projectId) => _running.TryGetValue(projectId, out var r) ? r.Execution.BuildId : null;

    public int RunningCount => _running.Count;

    public async Task<StartResult> StartAsync(string projectId, BuildRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Interlocked.Increment(ref _reserved) > _options.MaxConcurrentBuilds)
        {
            Interlocked.Decrement(ref _reserved);
            return new StartResult(StartOutcome.TooManyBuilds, string.Empty);
        }

        var buildId = "build-" + Guid.NewGuid().ToString("N")[..12];
        var cts = new CancellationTokenSource();
        var execution = new BuildExecution(projectId, buildId, request, _publisher, _decisions, _pacing, cts.Token);
        var running = new Running(execution, cts);
        if (!_running.TryAdd(projectId, running))
        {
            Interlocked.Decrement(ref _reserved);
            cts.Dispose();
            return new StartResult(StartOutcome.AlreadyRunning, RunningBuildId(projectId) ?? string.Empty);
        }

        try
        {
            await _store.SaveBuildAsync(new BuildRecord(buildId, projectId, "running", BuildPhases.Analyze, DateTimeOffset.UtcNow), cancellationToken);
        }
        catch
        {
            // the project must not stay blocked by a build that never started
            _running.TryRemove(new KeyValuePair<string, Running>(projectId, running));
            Interlocked.Decrement(ref _reserved);
            cts.Dispose();
            throw;
        }

        running.Task = Task.Run(() => RunAsync(running));
        return new StartResult(StartOutcome.Started, buildId);
    }

    /// <summary>Cancels a running build; false when that build is not running.</summary>
    public bool Cancel(string projectId, string buildId, string cancelledBy)
    {
        if (!_running.TryGetValue(projectId, out var running) || running.Execution.BuildId != buildId)
        {
            return false;
        }

        running.CancelledBy = cancelledBy;
        try
        {
            running.Cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the build ended meanwhile
            return false;
        }

        return true;
    }

    /// <summary>Waits for a build of this process to end (tests, shutdown).</summary>
    public Task WhenFinishedAsync(string projectId) => _running.TryGetValue(projectId, out var r) && r.Task is { } t ? t : Task.CompletedTask;

    /// <summary>Ends builds that were running when the process died (build:failed, code INTERRUPTED).</summary>
    public async Task EndInterruptedBuildsAsync(CancellationToken cancellationToken = default)
    {
        foreach (var build in await _store.LoadRunningBuildsAsync(cancellationToken))
        {
            if (_running.ContainsKey(build.ProjectId))
            {
                continue;
            }

            await _publisher.PublishAsync(build.ProjectId, EventTypes.BuildFailed, new Dictionary<string, object?>
            {
                ["buildId"] = build.BuildId,
                ["error"] = new Dictionary<string, object?>
                {
                    ["code"] = "INTERRUPTED",
                    ["phase"] = build.Phase,
                    ["message"] = "The gateway stopped while this build was running.",
                    ["details"] = new { code = "INTERRUPTED", buildId = build.BuildId, startedAt = build.StartedAt.ToUnixTimeMilliseconds() },
                    ["suggestions"] = new[] { "Start the build again" },
                },
            }, cancellationToken);
            await _store.SaveBuildAsync(build with { State = "interrupted" }, cancellationToken);
        }
    }

    private async Task RunAsync(Running running)
    {
        var build = running.Execution;
        var agents = _agentsFor(build.Request);
        var pump = Task.CompletedTask;
        using var pumpStop = new CancellationTokenSource();
        var state = "failed";
        try
        {
            build.EstimatedSeconds = BuildPhases.All.Sum(phase => agents.Where(a => a.Phases.Contains(phase)).GroupBy(a => a.OrderIn(phase)).Sum(g => g.Max(a => a.EstimateSeconds(phase))));
            await build.PublishAsync(EventTypes.BuildStarted, new Dictionary<string, object?>
            {
                ["projectId"] = build.ProjectId,
                ["buildId"] = build.BuildId,
                ["estimatedDuration"] = Math.Round(build.EstimatedSeconds),
                ["phases"] = BuildPhases.All,
                ["startedBy"] = build.Request.StartedBy,
            });
            pump = PumpProgressAsync(build, pumpStop.Token);
            for (var index = 0; index < BuildPhases.All.Length; index++)
            {
                var phase = BuildPhases.All[index];
                var inPhase = agents.Where(a => a.Phases.Contains(phase)).ToList();
                build.EnterPhase(phase, index, inPhase.Select(AgentId));
                await _store.SaveBuildAsync(new BuildRecord(build.BuildId, build.ProjectId, "running", phase, DateTimeOffset.UtcNow));
                foreach (var group in inPhase.GroupBy(a => a.OrderIn(phase)).OrderBy(g => g.Key))
                {
                    await Task.WhenAll(group.Select(agent => RunAgentAsync(running, agent, phase)));
                }

                build.CompletePhase();
                await PublishProgressAsync(build, force: true, $"Phase {phase} completed");
            }

            pumpStop.Cancel();
            await pump;
            await build.PublishAsync(EventTypes.BuildCompleted, new Dictionary<string, object?>
            {
                ["projectId"] = build.ProjectId,
                ["buildId"] = build.BuildId,
                ["duration"] = Math.Round(build.ElapsedSimulated),
                ["previewUrl"] = _options.PreviewUrlFor?.Invoke(_options.PreviewBaseUrl, build.ProjectId) ?? $"{_options.PreviewBaseUrl.TrimEnd('/')}/{build.ProjectId}",
                ["stats"] = BuildStats.From(build.Outputs),
            });
            state = "completed";
            if (build.Request.Deploy)
            {
                build.Stage = "deploy";
                state = await DeployAsync(build) ? "deployed" : "deployment-failed";
            }
        }
        catch (Exception ex) when (running.Failure is not null || ex is BuildFailedException)
        {
            // an agent failed for good: the other agents of its phase were stopped with it
            var failure = running.Failure ?? (BuildFailedException)ex;
            await SettleAgentsAsync(build, "Stopped: the build failed");
            await Quietly(() => build.PublishAsync(EventTypes.BuildFailed, new Dictionary<string, object?>
            {
                ["projectId"] = build.ProjectId,
                ["buildId"] = build.BuildId,
                ["error"] = new Dictionary<string, object?>
                {
                    ["code"] = failure.Code,
                    ["phase"] = failure.Phase,
                    ["message"] = failure.Message,
                    ["details"] = failure.Details ?? new { },
                    ["suggestions"] = s_failureSuggestions,
                },
            }));
        }
        catch (OperationCanceledException) when (running.Cancellation.IsCancellationRequested && running.CancelledBy == ShutdownCanceller)
        {
            // the process is stopping: the build stays recorded as running, and the next start
            // ends it with build:failed INTERRUPTED, as after a crash
            state = "running";
        }
        catch (OperationCanceledException) when (running.Cancellation.IsCancellationRequested)
        {
            var by = running.CancelledBy ?? "unknown";
            await SettleAgentsAsync(build, "Build cancelled");
            if (build.Stage == "deploy")
            {
                // the build itself completed: it is the deployment that was stopped
                state = "deployment-cancelled";
                await Quietly(() => build.PublishAsync(EventTypes.DeploymentFailed, new Dictionary<string, object?>
                {
                    ["projectId"] = build.ProjectId,
                    ["deploymentId"] = build.DeploymentId ?? "unknown",
                    ["environment"] = "test",
                    ["error"] = new Dictionary<string, object?>
                    {
                        ["code"] = "CANCELLED",
                        ["phase"] = "deploy",
                        ["message"] = $"The deployment was cancelled by {by}.",
                        ["details"] = new { cancelledBy = by },
                        ["suggestions"] = new[] { "Deploy again when ready" },
                    },
                }));
            }
            else
            {
                state = "cancelled";
                await Quietly(() => build.PublishAsync(EventTypes.BuildCancelled, new Dictionary<string, object?>
                {
                    ["projectId"] = build.ProjectId,
                    ["buildId"] = build.BuildId,
                    ["cancelledBy"] = by,
                    ["phase"] = build.Phase,
                }));
            }
        }
#pragma warning disable CA1031 // any failure ends the build with build:failed, never silently
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "Build {BuildId} of {ProjectId} crashed", build.BuildId, build.ProjectId);
            await Quietly(() => build.PublishAsync(EventTypes.BuildFailed, new Dictionary<string, object?>
            {
                ["projectId"] = build.ProjectId,
                ["buildId"] = build.BuildId,
                ["error"] = new Dictionary<string, object?>
                {
                    ["code"] = "INTERNAL_ERROR",
                    ["phase"] = build.Phase,
                    ["message"] = "The build runner failed: " + ex.Message,
                    ["details"] = new { },
                    ["suggestions"] = s_failureSuggestions,
                },
            }));
        }
        finally
        {
            pumpStop.Cancel();
            await Quietly(() => pump);
            await Quietly(() => _store.SaveBuildAsync(new BuildRecord(build.BuildId, build.ProjectId, state, build.Phase, DateTimeOffset.UtcNow)).AsTask());
            _running.TryRemove(new KeyValuePair<string, Running>(build.ProjectId, running));
            Interlocked.Decrement(ref _reserved);
            running.Cancellation.Dispose();
        }
    }

    private string AgentId(IAgent agent) => $"agent-{agent.AgentType}";

    private async Task RunAgentAsync(Running running, IAgent agent, string phase)
    {
        var build = running.Execution;
        var agentId = AgentId(agent);
        build.RunningAgents[agentId] = agent.AgentType;
        var context = new AgentContext(build, agentId, agent.AgentType, phase);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await agent.RunPhaseAsync(phase, context);
                return;
            }
            catch (AgentException ex)
            {
                var retry = ex.Retryable && attempt < _options.MaxRetries;
                await PublishAgentErrorAsync(build, agentId, agent.AgentType, ex, attempt);
                if (!retry)
                {
                    build.LastStatus[agentId] = "failed";
                    await build.PublishAsync(EventTypes.AgentStatusUpdate, new Dictionary<string, object?>
                    {
                        ["agentId"] = agentId,
                        ["agentType"] = agent.AgentType,
                        ["status"] = "failed",
                        ["message"] = ex.Message,
                    });
                    var why = ex.Retryable ? $"{ex.Message} (gave up after {attempt + 1} attempts)" : ex.Message;
                    var failure = new BuildFailedException(ex.Code, phase, why, new { agentId, agentType = agent.AgentType, attempts = attempt + 1, cause = ex.Details });

                    // stop the other agents at once: the build is over
                    running.Fail(failure);
                    throw failure;
                }

                await build.PaceAsync(_options.RetryBackoffSeconds * Math.Pow(2, attempt));
            }
        }
    }

    private static Task PublishAgentErrorAsync(BuildExecution build, string agentId, string agentType, AgentException ex, int attempt) =>
        build.PublishAsync(EventTypes.AgentError, new Dictionary<string, object?>
        {
            ["agentId"] = agentId,
            ["agentType"] = agentType,
            ["error"] = new Dictionary<string, object?>
            {
                ["code"] = ex.Code,
                ["message"] = ex.Message,
                ["details"] = ex.Details ?? new { },
                ["retryable"] = ex.Retryable,
                ["retryCount"] = attempt + 1,
            },
        });

    /// <summary>Agents still shown working or waiting are set idle when the build ends early.</summary>
    private async Task SettleAgentsAsync(BuildExecution build, string message)
    {
        foreach (var (agentId, agentType) in build.RunningAgents)
        {
            if (build.LastStatus.GetValueOrDefault(agentId) is "working" or "waiting")
            {
                build.LastStatus[agentId] = "idle";
                await Quietly(() => build.PublishAsync(EventTypes.AgentStatusUpdate, new Dictionary<string, object?>
                {
                    ["agentId"] = agentId,
                    ["agentType"] = agentType,
                    ["status"] = "idle",
                    ["message"] = message,
                }));
            }
        }
    }

    private async Task<bool> DeployAsync(BuildExecution build)
    {
        var deploymentId = "deployment-" + Guid.NewGuid().ToString("N")[..12];
        build.DeploymentId = deploymentId;
        var context = new DeploymentContext(build, deploymentId, "test");
        var started = build.ElapsedSimulated;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var result = await _deployerFor(build.Request).DeployAsync(context);
                await build.PublishAsync(EventTypes.DeploymentSuccess, new Dictionary<string, object?>
                {
                    ["deploymentId"] = deploymentId,
                    ["environment"] = context.Environment,
                    ["url"] = result.Url,
                    ["healthStatus"] = result.HealthStatus,
                    ["duration"] = Math.Round(build.ElapsedSimulated - started),
                });
                return true;
            }
            catch (AgentException ex)
            {
                await PublishAgentErrorAsync(build, "agent-deployment", "deployment", ex, attempt);
                if (ex.Retryable && attempt < _options.MaxRetries)
                {
                    await build.PaceAsync(_options.RetryBackoffSeconds * Math.Pow(2, attempt));
                    continue;
                }

                await build.PublishAsync(EventTypes.DeploymentFailed, new Dictionary<string, object?>
                {
                    ["projectId"] = build.ProjectId,
                    ["deploymentId"] = deploymentId,
                    ["environment"] = context.Environment,
                    ["error"] = new Dictionary<string, object?>
                    {
                        ["code"] = ex.Code,
                        ["phase"] = "deploy",
                        ["message"] = ex.Retryable ? $"{ex.Message} (gave up after {attempt + 1} attempts)" : ex.Message,
                        ["details"] = ex.Details ?? new { },
                        ["suggestions"] = new[] { "Check the deployment logs", "Deploy again once the environment is healthy" },
                    },
                });
                return false;
            }
        }
    }

    private async Task PumpProgressAsync(BuildExecution build, CancellationToken stop)
    {
        var interval = TimeSpan.FromSeconds(1 / Math.Max(0.1, _options.ProgressEventsPerSecond));
        using var timer = new PeriodicTimer(interval, _pacing);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                await PublishProgressAsync(build, force: false, $"Working on {build.Phase}");
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task PublishProgressAsync(BuildExecution build, bool force, string message)
    {
        await build.ProgressGate.WaitAsync();
        try
        {
            if (build.TakeProgress(force, message) is { } progress)
            {
                await build.PublishAsync(EventTypes.BuildProgress, progress);
            }
        }
        finally
        {
            build.ProgressGate.Release();
        }
    }

    private async Task Quietly(Func<Task> action)
    {
        try
        {
            await action();
        }
#pragma warning disable CA1031 // best effort while a build ends
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "Publishing the end of a build failed");
        }
    }

    public async ValueTask DisposeAsync()
    {
        var ending = new List<Task>();
        foreach (var running in _running.Values)
        {
            running.CancelledBy = ShutdownCanceller;
            await running.Cancellation.CancelAsync();
            if (running.Task is { } task)
            {
                ending.Add(task);
            }
        }

        await Task.WhenAll(ending);
    }

    private sealed class Running(BuildExecution execution, CancellationTokenSource cancellation)
    {
        public BuildExecution Execution { get; } = execution;

        public CancellationTokenSource Cancellation { get; } = cancellation;

        public Task? Task { get; set; }

        public string? CancelledBy { get; set; }

        public BuildFailedException? Failure { get; private set; }

        public void Fail(BuildFailedException failure)
        {
            lock (Cancellation)
            {
                Failure ??= failure;
            }

            try
            {
                Cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // the build is already over
            }
        }
    }
}

/// <summary>Ends a build: a non-retryable failure or retries exhausted.</summary>
internal sealed class BuildFailedException(string code, string phase, string message, object? details) : Exception(message)
{
    public string Code { get; } = code;

    public string Phase { get; } = phase;

    public object? Details { get; } = details;
}

/// <summary>The build:completed stats, counted from what the agents really output.</summary>
internal static class BuildStats
{
    public static Dictionary<string, int> From(IReadOnlyDictionary<string, System.Text.Json.JsonElement> outputs) => new()
    {
        ["componentsGenerated"] = Count(outputs, "ui", "components"),
        ["apiEndpointsCreated"] = Count(outputs, "backend", "endpoints"),
        ["dataModelsCreated"] = Count(outputs, "database", "entities"),
    };

    private static int Count(IReadOnlyDictionary<string, System.Text.Json.JsonElement> outputs, string agentType, string property) =>
        outputs.TryGetValue(agentType, out var output) && output.ValueKind == System.Text.Json.JsonValueKind.Object
            && output.TryGetProperty(property, out var list) && list.ValueKind == System.Text.Json.JsonValueKind.Array
            ? list.GetArrayLength()
            : 0;
}
