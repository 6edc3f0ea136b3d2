using System.Text.Json;
using StackExchange.Redis;

namespace Builder.Events;

/// <summary>
/// Decisions in Redis, shared by every node of a cluster. A decision is a hash
/// <c>{prefix}decision:{id}</c> (field <c>body</c>: the decision as asked; field
/// <c>resolution</c>: its one resolution, written with HSETNX by a Lua script, so the first
/// answer or timeout wins whichever node it reaches); the pending ones are indexed in the sorted
/// set <c>{prefix}decisions:pending</c> by deadline and in a set per project. The script that
/// resolves also publishes the resolution on <c>{prefix}cluster:decisions</c>, from which every
/// node learns it (<see cref="ResolvedElsewhere"/>) to wake its waiters. A resolved decision is
/// kept for <see cref="ResolvedRetention"/>.
/// </summary>
public sealed class RedisDecisionStore : IDecisionStore, IDisposable
{
    /// <summary>How long a resolved decision stays readable (GET /api/decisions/{id}, late answers).</summary>
    public static readonly TimeSpan ResolvedRetention = TimeSpan.FromDays(7);

    private const string ResolveScript = """
        if redis.call('HEXISTS', KEYS[1], 'body') == 0 then return -1 end
        if redis.call('HSETNX', KEYS[1], 'resolution', ARGV[1]) == 0 then return 0 end
        redis.call('ZREM', KEYS[2], ARGV[2])
        redis.call('SREM', KEYS[3], ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        redis.call('PUBLISH', ARGV[4], ARGV[5])
        return 1
        """;

    private readonly IDatabase _db;
    private readonly RedisSubscription _subscription;
    private readonly string _prefix;
    private readonly RedisChannel _channel;
    private readonly string _nodeId = Guid.NewGuid().ToString("N");

    public RedisDecisionStore(IConnectionMultiplexer redis, string prefix = "builder:")
    {
        ArgumentNullException.ThrowIfNull(redis);
        _db = redis.GetDatabase();
        _prefix = prefix;
        _channel = RedisChannel.Literal(prefix + "cluster:decisions");
        _subscription = new RedisSubscription(redis, _channel, OnMessage);
    }

    /// <summary>Completes once this node hears of the resolutions made elsewhere.</summary>
    public Task Subscribed => _subscription.Subscribed;

    public bool Shared => true;

    public event Action<string, DecisionResolution>? ResolvedElsewhere;

    private RedisKey Key(string decisionId) => _prefix + "decision:" + decisionId;

    private RedisKey PendingKey => _prefix + "decisions:pending";

    private RedisKey ProjectKey(string projectId) => _prefix + "decisions:pending:" + projectId;

    public async ValueTask SaveAsync(StoredDecision decision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decision);
        var transaction = _db.CreateTransaction();
        _ = transaction.HashSetAsync(Key(decision.DecisionId), "body", JsonSerializer.Serialize(decision with { Resolution = null }, StoreJson.Options));
        _ = transaction.SortedSetAddAsync(PendingKey, decision.DecisionId, decision.Deadline.ToUnixTimeMilliseconds());
        _ = transaction.SetAddAsync(ProjectKey(decision.ProjectId), decision.DecisionId);
        await transaction.ExecuteAsync();
        if (decision.Resolution is { } resolution)
        {
            await TryResolveAsync(decision, resolution);
        }
    }

    public async ValueTask<StoredDecision?> LoadAsync(string decisionId, CancellationToken cancellationToken = default)
    {
        var fields = await _db.HashGetAsync(Key(decisionId), ["body", "resolution"]);
        if (fields[0].IsNull)
        {
            return null;
        }

        var decision = JsonSerializer.Deserialize<StoredDecision>((string)fields[0]!, StoreJson.Options)!;
        return fields[1].IsNull ? decision : decision with { Resolution = JsonSerializer.Deserialize<DecisionResolution>((string)fields[1]!, StoreJson.Options) };
    }

    public async ValueTask<IReadOnlyList<StoredDecision>> LoadPendingAsync(string? projectId = null, CancellationToken cancellationToken = default)
    {
        var ids = projectId is null
            ? (await _db.SortedSetRangeByRankAsync(PendingKey)).Select(v => (string)v!)
            : (await _db.SetMembersAsync(ProjectKey(projectId))).Select(v => (string)v!);
        var result = new List<StoredDecision>();
        foreach (var id in ids)
        {
            if (await LoadAsync(id, cancellationToken) is { Resolution: null } decision)
            {
                result.Add(decision);
            }
        }

        return result;
    }

    /// <summary>The pending decisions whose deadline is at or before <paramref name="now"/> (at most 100 a call).</summary>
    public async ValueTask<IReadOnlyList<StoredDecision>> LoadDueAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var result = new List<StoredDecision>();
        foreach (var id in await _db.SortedSetRangeByScoreAsync(PendingKey, double.NegativeInfinity, now.ToUnixTimeMilliseconds(), take: 100))
        {
            if (await LoadAsync((string)id!, cancellationToken) is { Resolution: null } decision)
            {
                result.Add(decision);
            }
            else
            {
                // a decision whose hash expired or was resolved without its index entry removed
                await _db.SortedSetRemoveAsync(PendingKey, id);
            }
        }

        return result;
    }

    public async ValueTask<bool> TryResolveAsync(string decisionId, DecisionResolution resolution, CancellationToken cancellationToken = default)
    {
        var decision = await LoadAsync(decisionId, cancellationToken);
        return decision is not null && await TryResolveAsync(decision, resolution);
    }

    private async Task<bool> TryResolveAsync(StoredDecision decision, DecisionResolution resolution)
    {
        var notice = JsonSerializer.Serialize(new Notice(_nodeId, decision.ProjectId, resolution), StoreJson.Options);
        var result = await _db.ScriptEvaluateAsync(
            ResolveScript,
            [Key(decision.DecisionId), PendingKey, ProjectKey(decision.ProjectId)],
            [JsonSerializer.Serialize(resolution, StoreJson.Options), decision.DecisionId, (long)ResolvedRetention.TotalMilliseconds, _channel.ToString(), notice]);
        return (int)result == 1;
    }

    private void OnMessage(RedisChannel channel, RedisValue message)
    {
        Notice? notice;
        try
        {
            notice = JsonSerializer.Deserialize<Notice>((string)message!, StoreJson.Options);
        }
        catch (JsonException)
        {
            return;
        }

        if (notice is not null && notice.Node != _nodeId)
        {
            ResolvedElsewhere?.Invoke(notice.ProjectId, notice.Resolution);
        }
    }

    public void Dispose() => _subscription.Dispose();

    private sealed record Notice(string Node, string ProjectId, DecisionResolution Resolution);
}
