using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace SocketIO.Redis;

/// <summary>Health check of the Redis adapter: <c>services.AddHealthChecks().AddSocketIORedis()</c>.</summary>
public static class RedisAdapterHealthCheckExtensions
{
    /// <summary>
    /// Adds the check <paramref name="name"/> of the adapter registered by
    /// <c>AddRedisAdapter</c>: Healthy while its Redis connection is up,
    /// <paramref name="failureStatus"/> (Degraded: local delivery goes on) while it is down; its data
    /// are <c>connected</c> and <c>publishFailures</c>.
    /// </summary>
    public static IHealthChecksBuilder AddSocketIORedis(this IHealthChecksBuilder builder, string name = "socketio-redis", HealthStatus failureStatus = HealthStatus.Degraded, IEnumerable<string>? tags = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return builder.Add(new HealthCheckRegistration(
            name,
            sp => new RedisAdapterHealthCheck(sp.GetService<RedisAdapterRuntime>()
                ?? throw new InvalidOperationException("AddSocketIORedis: the Redis adapter is not registered; call services.AddSocketIO().AddRedisAdapter(...).")),
            failureStatus,
            tags));
    }
}

internal sealed class RedisAdapterHealthCheck(RedisAdapterRuntime runtime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var connected = runtime.IsConnected;
        var data = new Dictionary<string, object>
        {
            ["connected"] = connected,
            ["publishFailures"] = runtime.PublishFailures,
        };
        return Task.FromResult(connected
            ? HealthCheckResult.Healthy("Redis connected", data)
            : new HealthCheckResult(context.Registration.FailureStatus, "Redis unreachable: broadcasts reach this node's sockets only", data: data));
    }
}
