using System.Text.Json;
using Builder.Contracts;
using Builder.Events;
using Microsoft.Extensions.Logging;

namespace Builder.Runner;

/// <summary>
/// Liveness leases for agents outside the process (publishing over HTTP or Redis): an agent
/// reported "working" that says nothing for the lease time is reported "failed", so no card stays
/// "working" forever. Agents of this process's builds are exempt (their runner ends them). The
/// leases live in an <see cref="IAgentLeases"/>: this process's memory, or Redis in a cluster,
/// where every node renews what it publishes and sweeps, and one node reports each lost agent.
/// </summary>
public sealed class AgentLeaseMonitor : IDisposable
{
    private readonly IAgentLeases _leases;
    private readonly EventPublisher _publisher;
    private readonly BuildRunner _runner;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lease;
    private readonly ILogger<AgentLeaseMonitor> _logger;
    private readonly ITimer _timer;

    public AgentLeaseMonitor(EventPublisher publisher, BuildRunner runner, IAgentLeases leases, RunnerOptions options, TimeProvider time, ILogger<AgentLeaseMonitor> logger)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        ArgumentNullException.ThrowIfNull(options);
        _leases = leases;
        _publisher = publisher;
        _runner = runner;
        _time = time;
        _logger = logger;
        _lease = TimeSpan.FromSeconds(options.AgentLeaseSeconds);
        publisher.Published += OnPublished;
        var period = TimeSpan.FromSeconds(Math.Max(1, options.AgentLeaseSeconds / 4.0));
        _timer = time.CreateTimer(_ => _ = SweepAsync(), null, period, period);
    }

    private void OnPublished(EventEnvelope e)
    {
        if (!e.Type.StartsWith("agent:", StringComparison.Ordinal) || !e.Payload.TryGetProperty("agentId", out var id) || id.ValueKind != JsonValueKind.String)
        {
            return;
        }

        var agentId = id.GetString()!;
        if (_runner.IsInternalAgent(e.ProjectId, agentId))
        {
            // this process's own builds end their agents themselves
            return;
        }

        var status = e.Type == EventTypes.AgentStatusUpdate && e.Payload.TryGetProperty("status", out var s) ? s.GetString() : null;
        if (status is not null && status != "working")
        {
            _leases.Release(e.ProjectId, agentId);
            return;
        }

        var agentType = e.Payload.TryGetProperty("agentType", out var t) ? t.GetString() ?? "backend" : "backend";
        _leases.Touch(e.ProjectId, agentId, agentType, _time.GetUtcNow() + _lease, onlyIfHeld: status != "working");
    }

    /// <summary>Fails the agents whose lease expired. Runs on a timer; public for tests and operators.</summary>
    public async Task SweepAsync()
    {
        IReadOnlyList<AgentLease> expired;
        try
        {
            expired = await _leases.ClaimExpiredAsync(_time.GetUtcNow(), _runner.IsInternalAgent);
        }
#pragma warning disable CA1031 // a timer sweep must survive a store that is down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "Reading the expired agent leases failed");
            return;
        }

        foreach (var lease in expired)
        {
            try
            {
                await _publisher.PublishAsync(lease.ProjectId, EventTypes.AgentStatusUpdate, new AgentStatusPayload(
                    lease.AgentId,
                    lease.AgentType,
                    "failed",
                    Message: $"No report from the agent for {(int)_lease.TotalSeconds} s while working: its lease expired, it is presumed lost."));
            }
#pragma warning disable CA1031 // a timer sweep must survive a failed publication
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _logger.LogError(ex, "Failing agent {AgentId} of {ProjectId} after its lease failed", lease.AgentId, lease.ProjectId);
            }
        }
    }

    public void Dispose()
    {
        _publisher.Published -= OnPublished;
        _timer.Dispose();
    }
}
