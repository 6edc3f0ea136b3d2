using System.Globalization;
using System.Text.Json;
using StackExchange.Redis;

namespace Builder.Events;

/// <summary>
/// The event log of a cluster, in Redis: per project a counter <c>builder:{id}:seq</c> and a Stream
/// <c>builder:{id}:log</c> whose entry id is <c>seq-0</c>. One Lua script increments the counter,
/// adds the envelope to the Stream (trimmed to <c>maxPerProject</c> entries) and publishes it on
/// <see cref="FeedChannel"/>, atomically: seq has no gap and no duplicate whichever node appends, and
/// every subscriber receives the envelopes in the order of their seq. An append returns (and its
/// producer is acknowledged) only once Redis has executed the script; when Redis cannot be reached
/// it throws <see cref="StoreUnavailableException"/>.
/// </summary>
public sealed class RedisEventLog(IConnectionMultiplexer redis, int maxPerProject = 100_000) : IEventLog
{
    /// <summary>The channel every appended envelope is published on, in seq order (<see cref="ClusterProjectRooms"/>).</summary>
    public const string FeedChannel = "builder:feed";

    private const string AppendScript = """
        local seq = redis.call('INCR', KEYS[1])
        local envelope = ARGV[1] .. seq .. ARGV[2]
        redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'e', envelope)
        redis.call('PUBLISH', ARGV[4], envelope)
        return seq
        """;

    // the batch form: one script for all the events of a batch, seqs first..last in order
    private const string AppendBatchScript = """
        local n = tonumber(ARGV[1])
        local last = redis.call('INCRBY', KEYS[1], n)
        local first = last - n + 1
        for i = 0, n - 1 do
          local seq = first + i
          local envelope = ARGV[4 + 2 * i] .. seq .. ARGV[5 + 2 * i]
          redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'e', envelope)
          redis.call('PUBLISH', ARGV[3], envelope)
        end
        return first
        """;

    private const string SeqMarker = ",\"seq\":0,\"eventId\":";

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    private static RedisKey SeqKey(string projectId) => "builder:{" + projectId + "}:seq";

    private static RedisKey LogKey(string projectId) => "builder:{" + projectId + "}:log";

    public async ValueTask<EventEnvelope> AppendAsync(string projectId, string type, JsonElement payload, long timestamp, CancellationToken cancellationToken = default)
    {
        var eventId = Guid.NewGuid().ToString();
        var draft = JsonSerializer.Serialize(new EventEnvelope(type, timestamp, payload, projectId, 0, eventId), s_json);

        // the envelope is written whole here but for its seq, which the script puts in place: the
        // marker's last occurrence is the seq property (only projectId, validated, follows the payload)
        var at = draft.LastIndexOf(SeqMarker, StringComparison.Ordinal);
        var prefix = draft[..(at + ",\"seq\":".Length)];
        var suffix = draft[(at + ",\"seq\":0".Length)..];
        var result = await Guard(() => redis.GetDatabase().ScriptEvaluateAsync(AppendScript, [SeqKey(projectId), LogKey(projectId)], [prefix, suffix, maxPerProject, FeedChannel]));
        var seq = (long)result;
        return new EventEnvelope(type, timestamp, payload.Clone(), projectId, seq, eventId);
    }

    /// <summary>The events of one project in one script: consecutive seqs, stored and published in order, all or none.</summary>
    public async ValueTask<IReadOnlyList<EventEnvelope>> AppendBatchAsync(string projectId, IReadOnlyList<NewEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        if (events.Count == 0)
        {
            return [];
        }

        var args = new RedisValue[3 + (2 * events.Count)];
        args[0] = events.Count;
        args[1] = maxPerProject;
        args[2] = FeedChannel;
        var ids = new string[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            ids[i] = Guid.NewGuid().ToString();
            var (prefix, suffix) = Draft(projectId, events[i].Type, events[i].Payload, events[i].Timestamp, ids[i]);
            args[3 + (2 * i)] = prefix;
            args[4 + (2 * i)] = suffix;
        }

        var first = (long)await Guard(() => redis.GetDatabase().ScriptEvaluateAsync(AppendBatchScript, [SeqKey(projectId), LogKey(projectId)], args));
        var result = new EventEnvelope[events.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = new EventEnvelope(events[i].Type, events[i].Timestamp, events[i].Payload.Clone(), projectId, first + i, ids[i]);
        }

        return result;
    }

    /// <summary>The envelope as JSON but for its seq: the text before and after it.</summary>
    private static (string Prefix, string Suffix) Draft(string projectId, string type, JsonElement payload, long timestamp, string eventId)
    {
        var draft = JsonSerializer.Serialize(new EventEnvelope(type, timestamp, payload, projectId, 0, eventId), s_json);

        // the marker's last occurrence is the seq property (only projectId, validated, follows the payload)
        var at = draft.LastIndexOf(SeqMarker, StringComparison.Ordinal);
        return (draft[..(at + ",\"seq\":".Length)], draft[(at + ",\"seq\":0".Length)..]);
    }

    public async ValueTask<IReadOnlyList<EventEnvelope>> ReadAsync(string projectId, long afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        if (limit <= 0)
        {
            return [];
        }

        var start = (afterSeq + 1).ToString(CultureInfo.InvariantCulture) + "-0";
        var entries = await Guard(() => redis.GetDatabase().StreamRangeAsync(LogKey(projectId), start, "+", limit));
        var result = new List<EventEnvelope>(entries.Length);
        foreach (var entry in entries)
        {
            result.Add(Parse(entry.Values[0].Value!));
        }

        return result;
    }

    public async ValueTask<long> LatestSeqAsync(string projectId, CancellationToken cancellationToken = default)
    {
        var value = await Guard(() => redis.GetDatabase().StringGetAsync(SeqKey(projectId)));
        return value.IsNull ? 0 : (long)value;
    }

    public async ValueTask<long> EarliestSeqAsync(string projectId, CancellationToken cancellationToken = default)
    {
        var first = await Guard(() => redis.GetDatabase().StreamRangeAsync(LogKey(projectId), "-", "+", 1));
        return first.Length == 0 ? 0 : SeqOf(first[0].Id!);
    }

    /// <summary>Whether Redis answers now (readiness).</summary>
    public async Task<bool> PingAsync()
    {
        try
        {
            await redis.GetDatabase().PingAsync();
            return true;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Reads an envelope as the script stored and published it.</summary>
    public static EventEnvelope Parse(string json) =>
        JsonSerializer.Deserialize<EventEnvelope>(json, s_json) ?? throw new JsonException("an envelope was null");

    private static long SeqOf(string streamId) => long.Parse(streamId.AsSpan(0, streamId.IndexOf('-', StringComparison.Ordinal)), CultureInfo.InvariantCulture);

    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException
            || (ex is RedisServerException && ex.Message.StartsWith("LOADING", StringComparison.Ordinal)))
        {
            throw new StoreUnavailableException("Redis, which holds the event log, cannot be reached: " + ex.Message, ex);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>The store (Redis) cannot be reached: producers are answered 503 with Retry-After, nothing is lost silently.</summary>
public sealed class StoreUnavailableException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>The seconds a producer is told to wait before retrying.</summary>
    public const int RetryAfterSeconds = 2;
}
