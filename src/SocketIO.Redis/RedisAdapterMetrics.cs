using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;
using StackExchange.Redis;

namespace SocketIO.Redis;

/// <summary>
/// The adapter's instruments on the meter <c>SocketIO.Redis</c>: <c>socketio.redis.connected</c>
/// (1 while every Redis connection is up, else 0), <c>socketio.redis.publish_failures</c> and
/// <c>socketio.redis.connection_losses</c>. The meter comes from <see cref="IMeterFactory"/> when
/// there is one (one set of instruments per service provider), else it is a process-wide one.
/// </summary>
internal sealed class RedisAdapterMetrics
{
    public const string MeterName = "SocketIO.Redis";

    private static readonly Lazy<RedisAdapterMetrics> Static = new(() => new RedisAdapterMetrics(new Meter(MeterName)));

    // weak keys: a connection dropped without Dispose (UseRedisAdapter) is not kept alive by the gauge
    private readonly ConditionalWeakTable<IConnectionMultiplexer, object> _connections = [];
    private readonly Counter<long> _publishFailures;
    private readonly Counter<long> _connectionLosses;

    private RedisAdapterMetrics(Meter meter)
    {
        meter.CreateObservableGauge("socketio.redis.connected", ObserveConnected, "{connection}", "1 while the Redis connection is up (broadcasts reach the other nodes), 0 while it is down");
        _publishFailures = meter.CreateCounter<long>("socketio.redis.publish_failures", "{publish}", "Publishes (broadcasts, requests, responses) dropped because Redis was unreachable");
        _connectionLosses = meter.CreateCounter<long>("socketio.redis.connection_losses", "{outage}", "Redis outages: the connection went from up to down");
    }

    /// <summary>The instruments on <paramref name="meters"/>' meter, else the process-wide ones.</summary>
    public static RedisAdapterMetrics Create(IMeterFactory? meters) =>
        meters is null ? Static.Value : new RedisAdapterMetrics(meters.Create(MeterName));

    public void Track(IConnectionMultiplexer connection) => _connections.AddOrUpdate(connection, connection);

    public void Untrack(IConnectionMultiplexer connection) => _connections.Remove(connection);

    public void PublishFailed() => _publishFailures.Add(1);

    public void ConnectionLost() => _connectionLosses.Add(1);

    private IEnumerable<Measurement<int>> ObserveConnected()
    {
        int? connected = null;
        foreach (var (connection, _) in _connections)
        {
            connected = connection.IsConnected && connected != 0 ? 1 : 0;
        }

        return connected is { } value ? [new Measurement<int>(value)] : [];
    }
}
