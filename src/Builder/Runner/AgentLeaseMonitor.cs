using System.Collections.Concurrent;
using System.Text.Json;
using Builder.Contracts;
using Builder.Events;
using Microsoft.Extensions.Logging;

namespace Builder.Runner;

/// <summary>
/// Liveness leases for agents outside the process (publishing over HTTP or Redis): an agent
/// reported "working" that says nothing for the lease time is reported "failed", so no card stays
/// "working" forever. Agents of this process's builds are exempt (their runner ends them).
/// </summary>
public sealed class AgentLeaseMonitor : IDisposable
{
    private readonly ConcurrentDictionary<(string Project, string Agent), Lease> _leases = new();
    private readonly EventPublisher _publisher;
    private readonly BuildRunner _runner;
    private readonly TimeProvider _time;
    private readonly TimeSpan _lease;
    private readonly ILogger<AgentLeaseMonitor> _logger;
    private readonly ITimer _timer;

    public AgentLeaseMonitor(EventPublisher publisher, BuildRunner runner, RunnerOptions options, TimeProvider time, ILogger<AgentLeaseMonitor> logger)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        ArgumentNullException.ThrowIfNull(options);
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

        var key = (e.ProjectId, id.GetString()!);
        var status = e.Type == EventTypes.AgentStatusUpdate && e.Payload.TryGetProperty("status", out var s) ? s.GetString() : null;
        if (status is not null && status != "working")
        {
            _leases.TryRemove(key, out _);
            return;
        }

        if (status == "working" || _leases.ContainsKey(key))
        {
            var agentType = e.Payload.TryGetProperty("agentType", out var t) ? t.GetString() ?? "backend" : "backend";
            _leases[key] = new Lease(agentType, _time.GetUtcNow());
        }
    }

    /// <summary>Fails the agents whose lease expired. Runs on a timer; public for tests and operators.</summary>
    public async Task SweepAsync()
    {
        var now = _time.GetUtcNow();
        foreach (var (key, lease) in _leases)
        {
            if (now - lease.LastSeen < _lease || _runner.IsInternalAgent(key.Project, key.Agent))
            {
                continue;
            }

            if (!_leases.TryRemove(new KeyValuePair<(string, string), Lease>(key, lease)))
            {
                continue;
            }

            try
            {
                await _publisher.PublishAsync(key.Project, EventTypes.AgentStatusUpdate, new Dictionary<string, object?>
                {
                    ["agentId"] = key.Agent,
                    ["agentType"] = lease.AgentType,
                    ["status"] = "failed",
                    ["message"] = $"No report from the agent for {(int)_lease.TotalSeconds} s while working: its lease expired, it is presumed lost.",
                });
            }
#pragma warning disable CA1031 // a timer sweep must survive a failed publication
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _logger.LogError(ex, "Failing agent {AgentId} of {ProjectId} after its lease failed", key.Agent, key.Project);
            }
        }
    }

    public void Dispose()
    {
        _publisher.Published -= OnPublished;
        _timer.Dispose();
    }

    private sealed record Lease(string AgentType, DateTimeOffset LastSeen);
}
