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

    /// <summary>
    /// A cluster node renews the lease of each build it runs; a build whose node stops renewing for
    /// this long is ended by another node with build:failed INTERRUPTED.
    /// </summary>
    public int BuildLeaseSeconds { get; set; } = 15;

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

    /// <summary>
    /// The service key of the clock the simulated agents work by (their pace, the progress pump,
    /// retry backoffs): the system clock when none is registered under it. Registering the gateway's
    /// own (fake) <see cref="TimeProvider"/> there puts the whole runner on that clock.
    /// </summary>
    public const string PacingClockKey = "Builder.Runner.Pacing";

    private const string ShutdownCanceller = "shutdown";
    private const string LeaseLostCanceller = "lease-lost";

    private readonly ConcurrentDictionary<string, Running> _running = new(StringComparer.Ordinal);
    private int _reserved;
    private readonly Func<BuildRequest, IReadOnlyList<IAgent>> _agentsFor;
    private readonly Func<BuildRequest, IDeploymentAgent> _deployerFor;
    private readonly EventPublisher _publisher;
    private readonly DecisionService _decisions;
    private readonly IBuildLeases _leases;
    private readonly RunnerOptions _options;
    private readonly TimeProvider _pacing;
    private readonly TimeProvider _time;
    private readonly ILogger<BuildRunner> _logger;
    private readonly TimeSpan _lease;
    private readonly ITimer? _sweep;

    /// <param name="leases">Who runs which build: <see cref="LocalBuildLeases"/> in one process, <see cref="RedisBuildLeases"/> in a cluster.</param>
    /// <param name="time">The gateway's clock (as the rest of it): the builds' records, the renewal of their leases, the sweep for expired ones.</param>
    /// <param name="pacing">The clock the simulated agents work by (their pace, the progress pump).</param>
    public BuildRunner(Func<BuildRequest, IReadOnlyList<IAgent>> agentsFor, Func<BuildRequest, IDeploymentAgent> deployerFor, EventPublisher publisher, DecisionService decisions, IBuildLeases leases, RunnerOptions options, TimeProvider time, TimeProvider pacing, ILogger<BuildRunner> logger)
    {
        ArgumentNullException.ThrowIfNull(leases);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(pacing);
        _time = time;
        _agentsFor = agentsFor;
        _deployerFor = deployerFor;
        _publisher = publisher;
        _decisions = decisions;
        _leases = leases;
        _options = options;
        _pacing = pacing;
        _logger = logger;
        _lease = TimeSpan.FromSeconds(options.BuildLeaseSeconds);
        if (leases.Shared)
        {
            // a cluster: cancellations asked on other nodes, and the builds of nodes that died
            leases.CancelRequested += (projectId, buildId, by) => Cancel(projectId, buildId, by);
            _sweep = time.CreateTimer(static s => _ = ((BuildRunner)s!).EndInterruptedBuildsAsync(), this, RenewalPeriod, RenewalPeriod);
        }
    }

    /// <summary>How often a lease is renewed and the expired ones are looked for: a third of the lease.</summary>
    private TimeSpan RenewalPeriod => _lease / 3;

    private DateTimeOffset LeaseExpiry => _time.GetUtcNow() + _lease;

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

        running.Record = new BuildRecord(buildId, projectId, "running", BuildPhases.Analyze, _time.GetUtcNow());
        string? holder;
        try
        {
            holder = await _leases.TryAcquireAsync(running.Record, LeaseExpiry, cancellationToken);
        }
        catch
        {
            // the project must not stay blocked by a build that never started
            _running.TryRemove(new KeyValuePair<string, Running>(projectId, running));
            Interlocked.Decrement(ref _reserved);
            cts.Dispose();
            throw;
        }

        if (holder is not null)
        {
            // running on another node
            _running.TryRemove(new KeyValuePair<string, Running>(projectId, running));
            Interlocked.Decrement(ref _reserved);
            cts.Dispose();
            return new StartResult(StartOutcome.AlreadyRunning, holder);
        }

        if (_leases.Shared)
        {
            running.Renewal = _time.CreateTimer(static s => _ = ((object[])s!)[0] is BuildRunner runner ? runner.RenewAsync((Running)((object[])s!)[1]) : Task.CompletedTask, new object[] { this, running }, RenewalPeriod, RenewalPeriod);
        }

        running.Task = Task.Run(() => RunAsync(running));
        return new StartResult(StartOutcome.Started, buildId);
    }

    /// <summary>Extends a running build's lease; a lost lease (another node ended the build) stops it silently.</summary>
    private async Task RenewAsync(Running running)
    {
        try
        {
            if (!await _leases.RenewAsync(running.Record with { Phase = running.Execution.Phase }, LeaseExpiry))
            {
                _logger.LogWarning("Build {BuildId} of {ProjectId} lost its lease: another node ended it", running.Execution.BuildId, running.Execution.ProjectId);
                running.CancelledBy = LeaseLostCanceller;
                running.Cancellation.Cancel();
            }
        }
        catch (ObjectDisposedException)
        {
            // the build ended meanwhile
        }
#pragma warning disable CA1031 // a timer callback must not crash the process
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "Renewing the lease of build {BuildId} failed", running.Execution.BuildId);
        }
    }

    /// <summary>
    /// Cancels a running build, here or (cluster) on the node that runs it; false when that build
    /// is not running anywhere.
    /// </summary>
    public async Task<bool> CancelAsync(string projectId, string buildId, string cancelledBy) =>
        Cancel(projectId, buildId, cancelledBy) || await _leases.RequestCancelAsync(projectId, buildId, cancelledBy);

    /// <summary>Cancels a build running in this process; false when that build is not running here.</summary>
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

    /// <summary>
    /// Ends the builds whose runner is gone (build:failed, code INTERRUPTED): at start-up those
    /// this process ran before it stopped; in a cluster, on a timer, those of any node whose lease
    /// expired (each claimed by exactly one node).
    /// </summary>
    public async Task EndInterruptedBuildsAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            foreach (var build in await _leases.ClaimExpiredAsync(_time.GetUtcNow(), cancellationToken))
            {
                await _publisher.PublishAsync(build.ProjectId, EventTypes.BuildFailed, new BuildFailedPayload(
                    build.ProjectId,
                    build.BuildId,
                    new BuildError("INTERRUPTED", build.Phase, "The gateway stopped while this build was running.", new { code = "INTERRUPTED", buildId = build.BuildId, startedAt = build.StartedAt.ToUnixTimeMilliseconds() }, ["Start the build again"])), cancellationToken);
                await _leases.ReleaseAsync(build with { State = "interrupted" });
            }
        }
#pragma warning disable CA1031 // the sweep runs on a timer too: a failure is logged and retried at the next tick
        catch (Exception ex) when (_leases.Shared && ex is not OperationCanceledException)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "Ending the builds of stopped nodes failed");
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
            await build.PublishAsync(EventTypes.BuildStarted, new BuildStartedPayload(build.ProjectId, build.BuildId, Math.Round(build.EstimatedSeconds), BuildPhases.All, build.Request.StartedBy));
            pump = PumpProgressAsync(build, pumpStop.Token);
            for (var index = 0; index < BuildPhases.All.Length; index++)
            {
                var phase = BuildPhases.All[index];
                var inPhase = agents.Where(a => a.Phases.Contains(phase)).ToList();
                build.EnterPhase(phase, index, inPhase.Select(AgentId));
                await _leases.RenewAsync(running.Record with { Phase = phase }, LeaseExpiry);
                foreach (var group in inPhase.GroupBy(a => a.OrderIn(phase)).OrderBy(g => g.Key))
                {
                    await Task.WhenAll(group.Select(agent => RunAgentAsync(running, agent, phase)));
                }

                build.CompletePhase();
                await PublishProgressAsync(build, force: true, $"Phase {phase} completed");
            }

            pumpStop.Cancel();
            await pump;
            await build.PublishAsync(EventTypes.BuildCompleted, new BuildCompletedPayload(
                build.ProjectId,
                build.BuildId,
                Math.Round(build.ElapsedSimulated),
                _options.PreviewUrlFor?.Invoke(_options.PreviewBaseUrl, build.ProjectId) ?? $"{_options.PreviewBaseUrl.TrimEnd('/')}/{build.ProjectId}",
                BuildStats.From(build.Outputs)));
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
            await Quietly(() => build.PublishAsync(EventTypes.BuildFailed, new BuildFailedPayload(build.ProjectId, build.BuildId, new BuildError(failure.Code, failure.Phase, failure.Message, failure.Details ?? new { }, s_failureSuggestions))));
        }
        catch (OperationCanceledException) when (running.Cancellation.IsCancellationRequested && running.CancelledBy is LeaseLostCanceller)
        {
            // another node has already ended this build (build:failed INTERRUPTED): not a word more
            state = "running";
        }
        catch (OperationCanceledException) when (running.Cancellation.IsCancellationRequested && running.CancelledBy is ShutdownCanceller)
        {
            // the process is stopping gracefully: say so now rather than leave the build to expire;
            // if that cannot be published it stays recorded as running, and the next start (or
            // another node, when its lease runs out) ends it with INTERRUPTED, as after a crash
            state = await ReportInterruptedAsync(build) ? "interrupted" : "running";
        }
        catch (OperationCanceledException) when (running.Cancellation.IsCancellationRequested)
        {
            var by = running.CancelledBy ?? "unknown";
            await SettleAgentsAsync(build, "Build cancelled");
            if (build.Stage == "deploy")
            {
                // the build itself completed: it is the deployment that was stopped
                state = "deployment-cancelled";
                await Quietly(() => build.PublishAsync(EventTypes.DeploymentFailed, new DeploymentFailedPayload(
                    build.ProjectId,
                    build.DeploymentId ?? "unknown",
                    "test",
                    new BuildError("CANCELLED", "deploy", $"The deployment was cancelled by {by}.", new { cancelledBy = by }, ["Deploy again when ready"]))));
            }
            else
            {
                state = "cancelled";
                await Quietly(() => build.PublishAsync(EventTypes.BuildCancelled, new BuildCancelledPayload(build.ProjectId, build.BuildId, by, build.Phase)));
            }
        }
#pragma warning disable CA1031 // any failure ends the build with build:failed, never silently
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "Build {BuildId} of {ProjectId} crashed", build.BuildId, build.ProjectId);
            await Quietly(() => build.PublishAsync(EventTypes.BuildFailed, new BuildFailedPayload(build.ProjectId, build.BuildId, new BuildError("INTERNAL_ERROR", build.Phase, "The build runner failed: " + ex.Message, new { }, s_failureSuggestions))));
        }
        finally
        {
            pumpStop.Cancel();
            await Quietly(() => pump);
            if (running.Renewal is { } renewal)
            {
                await renewal.DisposeAsync();
            }

            await Quietly(() => _leases.ReleaseAsync(running.Record with { State = state, Phase = build.Phase }).AsTask());
            _running.TryRemove(new KeyValuePair<string, Running>(build.ProjectId, running));
            Interlocked.Decrement(ref _reserved);
            running.Cancellation.Dispose();
        }
    }

    /// <summary>
    /// A build stopped by a graceful shutdown: its agents' cards settled, then build:failed
    /// INTERRUPTED (deployment:failed INTERRUPTED when the build had completed and was deploying).
    /// False when the end could not be published.
    /// </summary>
    private async Task<bool> ReportInterruptedAsync(BuildExecution build)
    {
        const string Message = "The gateway node running this build was shut down.";
        await SettleAgentsAsync(build, "Stopped: the gateway is shutting down");
        try
        {
            if (build.Stage == "deploy")
            {
                await build.PublishAsync(EventTypes.DeploymentFailed, new DeploymentFailedPayload(
                    build.ProjectId,
                    build.DeploymentId ?? "unknown",
                    "test",
                    new BuildError("INTERRUPTED", "deploy", Message, new { code = "INTERRUPTED", buildId = build.BuildId, reason = "shutdown" }, ["Deploy again"])));
            }
            else
            {
                await build.PublishAsync(EventTypes.BuildFailed, new BuildFailedPayload(
                    build.ProjectId,
                    build.BuildId,
                    new BuildError("INTERRUPTED", build.Phase, Message, new { code = "INTERRUPTED", buildId = build.BuildId, reason = "shutdown" }, ["Start the build again"])));
            }

            return true;
        }
#pragma warning disable CA1031 // the build then stays recorded as running and is ended later
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "Reporting build {BuildId} of {ProjectId} interrupted by the shutdown failed; it is ended at the next start or by another node", build.BuildId, build.ProjectId);
            return false;
        }
    }

    private static string AgentId(IAgent agent) => $"agent-{agent.AgentType}";

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
                    await build.PublishAsync(EventTypes.AgentStatusUpdate, new AgentStatusPayload(agentId, agent.AgentType, "failed", Message: ex.Message));
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
        build.PublishAsync(EventTypes.AgentError, new AgentErrorPayload(agentId, agentType, new AgentError(ex.Code, ex.Message, ex.Details ?? new { }, ex.Retryable, attempt + 1)));

    /// <summary>Agents still shown working or waiting are set idle when the build ends early.</summary>
    private async Task SettleAgentsAsync(BuildExecution build, string message)
    {
        foreach (var (agentId, agentType) in build.RunningAgents)
        {
            if (build.LastStatus.GetValueOrDefault(agentId) is "working" or "waiting")
            {
                build.LastStatus[agentId] = "idle";
                await Quietly(() => build.PublishAsync(EventTypes.AgentStatusUpdate, new AgentStatusPayload(agentId, agentType, "idle", Message: message)));
            }
        }
    }

    private async Task<bool> DeployAsync(BuildExecution build)
    {
        var deploymentId = "deployment-" + Guid.NewGuid().ToString("N")[..12];
        build.DeploymentId = deploymentId;
        var context = new DeploymentContext(build, deploymentId, "test");
        var started = build.ElapsedSimulated;

        // the deployment agent is one of this build's agents (its card, exempt from agent leases)
        build.RunningAgents[DeploymentContext.AgentId] = DeploymentContext.AgentType;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                var result = await _deployerFor(build.Request).DeployAsync(context);
                if (build.LastStatus.GetValueOrDefault(DeploymentContext.AgentId) != "completed")
                {
                    // an agent that did not report its end: its card must not stay "working"
                    await context.ReportAsync("completed", null, 100, "Deploy done");
                }

                await build.PublishAsync(EventTypes.DeploymentSuccess, new DeploymentSuccessPayload(deploymentId, context.Environment, result.Url, result.HealthStatus, Math.Round(build.ElapsedSimulated - started)));
                return true;
            }
            catch (AgentException ex)
            {
                await PublishAgentErrorAsync(build, DeploymentContext.AgentId, DeploymentContext.AgentType, ex, attempt);
                if (ex.Retryable && attempt < _options.MaxRetries)
                {
                    await build.PaceAsync(_options.RetryBackoffSeconds * Math.Pow(2, attempt));
                    continue;
                }

                build.LastStatus[DeploymentContext.AgentId] = "failed";
                await build.PublishAsync(EventTypes.AgentStatusUpdate, new AgentStatusPayload(DeploymentContext.AgentId, DeploymentContext.AgentType, "failed", Message: ex.Message));

                await build.PublishAsync(EventTypes.DeploymentFailed, new DeploymentFailedPayload(
                    build.ProjectId,
                    deploymentId,
                    context.Environment,
                    new BuildError(ex.Code, "deploy", ex.Retryable ? $"{ex.Message} (gave up after {attempt + 1} attempts)" : ex.Message, ex.Details ?? new { }, ["Check the deployment logs", "Deploy again once the environment is healthy"])));
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
        if (_sweep is not null)
        {
            await _sweep.DisposeAsync();
        }

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

        /// <summary>The build as leased (its phase is updated when its lease is renewed).</summary>
        public BuildRecord Record { get; set; } = null!;

        /// <summary>The timer renewing the lease of a build in a cluster.</summary>
        public ITimer? Renewal { get; set; }

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
