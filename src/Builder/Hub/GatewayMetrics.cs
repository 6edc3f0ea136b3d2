using System.Diagnostics.Metrics;
using Builder.Contracts;
using Builder.Events;

namespace Builder.Hub;

/// <summary>
/// The gateway's instruments on the meter <c>Builder.Gateway</c> (System.Diagnostics.Metrics),
/// exported by OpenTelemetry: Prometheus text at <c>/metrics</c>, OTLP when an endpoint is set.
/// Instrument names are OpenTelemetry's (dots); the Prometheus exporter turns
/// <c>builder.events.published</c> into <c>builder_events_published_total</c>, a unit <c>s</c>
/// into a <c>_seconds</c> suffix and <c>By</c> into <c>_bytes</c>. Every instrument and its
/// labels: docs/architecture.md, "Telemetry".
/// </summary>
public sealed class GatewayMetrics : IDisposable
{
    /// <summary>The meter's name (what an OpenTelemetry meter provider subscribes to).</summary>
    public const string MeterName = "Builder.Gateway";

    // publish-to-delivery and heartbeat round trips: 1 ms to 10 s
    private static readonly double[] s_latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly bool _ownsMeter;
    private readonly Counter<long> _connections;
    private readonly Counter<long> _connectionsRefused;
    private readonly Counter<long> _authFailures;
    private readonly Counter<long> _clientErrors;
    private readonly Counter<long> _joins;
    private readonly Counter<long> _published;
    private readonly Counter<long> _delivered;
    private readonly Histogram<double> _deliveryLatency;
    private readonly Counter<long> _decisionsAsked;
    private readonly Counter<long> _decisionsResolved;
    private readonly Counter<long> _builds;
    private readonly Histogram<double> _heartbeatRtt;
    private readonly Counter<long> _heartbeatDisconnects;
    private readonly Counter<long> _redisEvents;
    private readonly Counter<long> _redisRejected;
    private readonly TimeProvider _time;

    /// <summary>The instruments on a meter of <paramref name="meters"/> (one set per service provider), else on a meter of their own.</summary>
    public GatewayMetrics(IMeterFactory? meters = null, TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _ownsMeter = meters is null;
        Meter = meters?.Create(MeterName) ?? new Meter(MeterName);
        var m = Meter;
        _connections = m.CreateCounter<long>("builder.connections", "{connection}", "Connections to /builder that passed authentication");
        _connectionsRefused = m.CreateCounter<long>("builder.connections.refused", "{connection}", "Connections refused (per-user cap, authentication)");
        _authFailures = m.CreateCounter<long>("builder.auth.failures", "{failure}", "Token refusals by error code (label code)");
        _clientErrors = m.CreateCounter<long>("builder.client.errors", "{error}", "error events sent to clients by error code (label code)");
        _joins = m.CreateCounter<long>("builder.joins", "{join}", "Successful join-project by how the client caught up (label catch_up: replay or snapshot)");
        _published = m.CreateCounter<long>("builder.events.published", "{event}", "Project events appended to the log and broadcast, by event type (label type)");
        _delivered = m.CreateCounter<long>("builder.events.delivered", "{event}", "Project events handed to this node's project room (its viewers), by event type (label type)");
        _deliveryLatency = m.CreateHistogram("builder.events.delivery_latency", "s", "From an event's publication (its timestamp) to its hand-over to this node's project room", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = s_latencyBuckets });
        _decisionsAsked = m.CreateCounter<long>("builder.decisions.asked", "{decision}", "Decisions asked (user:decision:required published)");
        _decisionsResolved = m.CreateCounter<long>("builder.decisions.resolved", "{decision}", "Decisions resolved, by outcome (label outcome: user, timeout, ...)");
        _builds = m.CreateCounter<long>("builder.builds", "{build}", "Builds ended, by result (label result: completed, failed, cancelled)");
        _heartbeatRtt = m.CreateHistogram("builder.heartbeat.rtt", "s", "Application heartbeat round trips (ping to pong)", tags: null, new InstrumentAdvice<double> { HistogramBucketBoundaries = s_latencyBuckets });
        _heartbeatDisconnects = m.CreateCounter<long>("builder.heartbeat.disconnects", "{connection}", "Connections closed for missed pongs");
        _redisEvents = m.CreateCounter<long>("builder.redis.events", "{event}", "Events consumed from the Redis channel builder:events");
        _redisRejected = m.CreateCounter<long>("builder.redis.rejected", "{message}", "Messages of builder:events refused (bad JSON, invalid event)");
    }

    /// <summary>The meter of the instruments (tests listen to it with a MeterListener).</summary>
    public Meter Meter { get; }

    public void ConnectionAccepted() => _connections.Add(1);

    public void ConnectionRefused() => _connectionsRefused.Add(1);

    public void AuthFailure(string? code) => _authFailures.Add(1, new KeyValuePair<string, object?>("code", code ?? "unknown"));

    public void ClientError(string? code) => _clientErrors.Add(1, new KeyValuePair<string, object?>("code", code ?? "unknown"));

    public void Joined(bool replayed) => _joins.Add(1, new KeyValuePair<string, object?>("catch_up", replayed ? "replay" : "snapshot"));

    /// <summary>An event published on this node (logged and broadcast): counts it, and the builds and decisions it ends or asks.</summary>
    public void Published(EventEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        _published.Add(1, new KeyValuePair<string, object?>("type", envelope.Type));
        switch (envelope.Type)
        {
            case EventTypes.BuildCompleted:
                _builds.Add(1, new KeyValuePair<string, object?>("result", "completed"));
                break;
            case EventTypes.BuildFailed:
                _builds.Add(1, new KeyValuePair<string, object?>("result", "failed"));
                break;
            case EventTypes.BuildCancelled:
                _builds.Add(1, new KeyValuePair<string, object?>("result", "cancelled"));
                break;
            case EventTypes.DecisionRequired:
                _decisionsAsked.Add(1);
                break;
        }
    }

    /// <summary>An event handed to this node's project room: counted by type, its age recorded as the delivery latency.</summary>
    public void Delivered(EventEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        _delivered.Add(1, new KeyValuePair<string, object?>("type", envelope.Type));
        var age = _time.GetUtcNow().ToUnixTimeMilliseconds() - envelope.Timestamp;
        _deliveryLatency.Record(Math.Max(0, age) / 1000.0, new KeyValuePair<string, object?>("type", envelope.Type));
    }

    public void DecisionResolved(string outcome) => _decisionsResolved.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public void ObserveHeartbeatRtt(TimeSpan rtt) => _heartbeatRtt.Record(rtt.TotalSeconds);

    public void HeartbeatDisconnect() => _heartbeatDisconnects.Add(1);

    public void RedisEventConsumed(int events = 1) => _redisEvents.Add(events);

    public void RedisMessageRejected() => _redisRejected.Add(1);

    /// <summary>An observable gauge on the meter, read at each collection.</summary>
    public void Gauge(string name, string unit, string description, Func<double> read) =>
        Meter.CreateObservableGauge(name, read, unit, description);

    public void Dispose()
    {
        if (_ownsMeter)
        {
            Meter.Dispose();
        }
    }
}
