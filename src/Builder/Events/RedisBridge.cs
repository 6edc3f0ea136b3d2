using System.Text.Json;
using Builder.Decisions;
using Builder.Hub;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Builder.Events;

/// <summary>
/// Redis Pub/Sub for producers outside the process: messages <c>{projectId, type, payload}</c> on
/// channel <c>builder:events</c> go through the same validation and log as every other event (a bad
/// message is logged and counted, never fatal); decision resolutions are published on
/// <c>builder:decisions</c>.
/// </summary>
public sealed class RedisBridge(IConnectionMultiplexer redis, EventPublisher publisher, DecisionService decisions, GatewayMetrics metrics, ILogger<RedisBridge> logger) : IHostedService
{
    public const string EventsChannel = "builder:events";
    public const string DecisionsChannel = "builder:decisions";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var queue = await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(EventsChannel));
        queue.OnMessage(OnMessageAsync);
        decisions.Resolved += OnResolved;
        logger.LogInformation("Redis ingest on {Channel}, resolutions on {Decisions}", EventsChannel, DecisionsChannel);
    }

    private async Task OnMessageAsync(ChannelMessage message)
    {
        try
        {
            using var doc = JsonDocument.Parse((string)message.Message!);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("projectId", out var projectId) || projectId.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("payload", out var payload))
            {
                Reject("a message must be {projectId, type, payload}");
                return;
            }

            var result = await publisher.PublishAsync(projectId.GetString()!, type.GetString()!, payload.Clone());
            if (!result.Ok)
            {
                Reject(string.Join("; ", result.Errors.Select(e => $"{e.Field} {e.Message}")));
                return;
            }

            metrics.Increment("builder_redis_events_total");
        }
        catch (JsonException ex)
        {
            Reject("invalid JSON: " + ex.Message);
        }
#pragma warning disable CA1031 // a bad message must never stop the subscription
        catch (Exception ex)
#pragma warning restore CA1031
        {
            logger.LogError(ex, "Publishing a Redis message failed");
            metrics.Increment("builder_redis_rejected_total");
        }
    }

    private void Reject(string reason)
    {
        logger.LogWarning("Rejected a message on {Channel}: {Reason}", EventsChannel, reason);
        metrics.Increment("builder_redis_rejected_total");
    }

    private void OnResolved(string projectId, Events.DecisionResolution resolution)
    {
        var body = JsonSerializer.Serialize(new
        {
            projectId,
            decisionId = resolution.DecisionId,
            selectedOptionId = resolution.SelectedOptionId,
            resolvedBy = resolution.ResolvedBy,
            userId = resolution.UserId,
            feedback = resolution.Feedback,
            resolvedAt = resolution.ResolvedAt.ToUnixTimeMilliseconds(),
        });
        redis.GetSubscriber().Publish(RedisChannel.Literal(DecisionsChannel), body, CommandFlags.FireAndForget);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        decisions.Resolved -= OnResolved;
        await redis.GetSubscriber().UnsubscribeAsync(RedisChannel.Literal(EventsChannel));
    }
}
