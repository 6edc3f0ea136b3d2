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
/// <c>builder:decisions</c>. On a cluster (<paramref name="lease"/> set) one node consumes the
/// channel, the one holding the lease key <c>builder:ingest:leader</c> (renewed every third of the
/// lease); when it dies another takes over once the lease expires: messages published in between
/// (at most the lease and a third) are consumed by nobody, as Pub/Sub keeps nothing.
/// </summary>
public sealed class RedisBridge(IConnectionMultiplexer redis, EventPublisher publisher, DecisionService decisions, GatewayMetrics metrics, ILogger<RedisBridge> logger, TimeSpan? lease = null, TimeProvider? time = null) : IHostedService, IDisposable
{
    public const string EventsChannel = "builder:events";
    public const string DecisionsChannel = "builder:decisions";
    public const string LeaderKey = "builder:ingest:leader";

    private const string RenewScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return redis.call('PEXPIRE', KEYS[1], ARGV[2])
        end
        return 0
        """;

    private readonly string _nodeId = Guid.NewGuid().ToString("N");
    private readonly SemaphoreSlim _turn = new(1, 1);
    private ChannelMessageQueue? _queue;
    private ITimer? _timer;

    /// <summary>Whether this node consumes the ingest channel now.</summary>
    public bool Consuming => Volatile.Read(ref _queue) is not null;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        decisions.Resolved += OnResolved;
        metrics.Gauge("builder.ingest.consuming", "{node}", "1 while this node consumes builder:events (holds the ingest lease), else 0", () => Consuming ? 1 : 0);
        if (lease is not { } period)
        {
            await ConsumeAsync();
        }
        else
        {
            await LeadAsync(period);
            _timer = (time ?? TimeProvider.System).CreateTimer(_ => _ = LeadAsync(period), null, period / 3, period / 3);
        }

        logger.LogInformation("Redis ingest on {Channel}{Lease}, resolutions on {Decisions}", EventsChannel, lease is null ? string.Empty : " (one node of the cluster at a time, by lease)", DecisionsChannel);
    }

    private async Task ConsumeAsync()
    {
        var queue = await redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(EventsChannel));
        queue.OnMessage(OnMessageAsync);
        Volatile.Write(ref _queue, queue);
    }

    /// <summary>Takes or renews the lease, and consumes exactly while it holds it.</summary>
    private async Task LeadAsync(TimeSpan period)
    {
        if (!await _turn.WaitAsync(0))
        {
            return;
        }

        try
        {
            var db = redis.GetDatabase();
            var ms = (long)period.TotalMilliseconds;
            var held = Consuming
                ? (long)await db.ScriptEvaluateAsync(RenewScript, [LeaderKey], [_nodeId, ms]) == 1
                : await db.StringSetAsync(LeaderKey, _nodeId, period, When.NotExists);
            if (held && !Consuming)
            {
                await ConsumeAsync();
                logger.LogInformation("This node now consumes {Channel}", EventsChannel);
            }
            else if (!held && Consuming)
            {
                await StopConsumingAsync();
                logger.LogWarning("This node lost the ingest lease: another node consumes {Channel}", EventsChannel);
            }
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            // Redis away: nothing arrives on the channel either; the lease is settled when it returns
            logger.LogDebug(ex, "The ingest lease could not be taken or renewed");
        }
        finally
        {
            _turn.Release();
        }
    }

    private async Task StopConsumingAsync()
    {
        if (Interlocked.Exchange(ref _queue, null) is { } queue)
        {
            await queue.UnsubscribeAsync();
        }
    }

    /// <summary>Most messages whose publication runs at once; the next message waits for a slot (back-pressure on the subscription).</summary>
    private const int MaxInFlight = 1024;

    private readonly SemaphoreSlim _inFlight = new(MaxInFlight, MaxInFlight);

    /// <summary>
    /// Reads a message, <c>{projectId, type, payload}</c> or the batch form <c>{projectId, events:
    /// [{type, payload}, ...]}</c> (all or none), and starts its publication without waiting for
    /// it: messages are handled in their order (a project's events take seqs in that order), and
    /// the publications of many messages share the log's commits as HTTP producers' do.
    /// </summary>
    private async Task OnMessageAsync(ChannelMessage message)
    {
        string projectId;
        EventDraft[] drafts;
        try
        {
            using var doc = JsonDocument.Parse((string)message.Message!);
            var root = doc.RootElement.Clone();
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("projectId", out var project) || project.ValueKind != JsonValueKind.String)
            {
                Reject("a message must be {projectId, type, payload} or {projectId, events: [{type, payload}, ...]}");
                return;
            }

            projectId = project.GetString()!;
            if (root.TryGetProperty("events", out var events))
            {
                if (events.ValueKind != JsonValueKind.Array || events.GetArrayLength() is 0 or > MaxBatchEvents)
                {
                    Reject($"events must be an array of 1 to {MaxBatchEvents} {{type, payload}}");
                    return;
                }

                drafts = new EventDraft[events.GetArrayLength()];
                var i = 0;
                foreach (var e in events.EnumerateArray())
                {
                    if (!TryRead(e, out drafts[i]))
                    {
                        Reject($"events[{i}] must be {{type, payload}}");
                        return;
                    }

                    i++;
                }
            }
            else if (TryRead(root, out var single))
            {
                drafts = [single];
            }
            else
            {
                Reject("a message must be {projectId, type, payload} or {projectId, events: [{type, payload}, ...]}");
                return;
            }
        }
        catch (JsonException ex)
        {
            Reject("invalid JSON: " + ex.Message);
            return;
        }

        await _inFlight.WaitAsync();
        _ = PublishAsync(projectId, drafts);
    }

    /// <summary>The most events of one message in the batch form (as Builder:Producers:MaxBatchEvents' default).</summary>
    public const int MaxBatchEvents = 100;

    private static bool TryRead(JsonElement e, out EventDraft draft)
    {
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && e.TryGetProperty("payload", out var payload))
        {
            draft = new EventDraft(type.GetString()!, payload);
            return true;
        }

        draft = default;
        return false;
    }

    private async Task PublishAsync(string projectId, EventDraft[] drafts)
    {
        try
        {
            // the publication is queued (its order fixed) before the first await of the call
            var result = await publisher.PublishBatchAsync(projectId, drafts);
            if (!result.Ok)
            {
                Reject(string.Join("; ", result.Errors.Select(e => e.Index is { } n && drafts.Length > 1 ? $"events[{n}].{e.Field} {e.Message}" : $"{e.Field} {e.Message}")));
                return;
            }

            metrics.RedisEventConsumed(drafts.Length);
        }
#pragma warning disable CA1031 // a bad message must never stop the subscription
        catch (Exception ex)
#pragma warning restore CA1031
        {
            logger.LogError(ex, "Publishing a Redis message failed");
            metrics.RedisMessageRejected();
        }
        finally
        {
            _inFlight.Release();
        }
    }

    private void Reject(string reason)
    {
        logger.LogWarning("Rejected a message on {Channel}: {Reason}", EventsChannel, reason);
        metrics.RedisMessageRejected();
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
        _timer?.Dispose();
        var leading = Consuming;
        await StopConsumingAsync();
        if (lease is not null && leading)
        {
            try
            {
                // hand over at once: another node takes the lease at its next attempt
                await redis.GetDatabase().ScriptEvaluateAsync("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", [LeaderKey], [_nodeId]);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                logger.LogDebug(ex, "The ingest lease could not be released (it expires by itself)");
            }
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        _turn.Dispose(); // _inFlight is left to the collector: publications may still release it
    }
}
