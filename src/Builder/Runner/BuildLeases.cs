using System.Collections.Concurrent;
using System.Text.Json;
using Builder.Events;
using StackExchange.Redis;

namespace Builder.Runner;

/// <summary>
/// Which build runs in each project, and who runs it. A build is run by the process that
/// acquired the project's lease; that process renews the lease while the build runs. The local
/// implementation (<see cref="LocalBuildLeases"/>) serves one process over the build store; the
/// Redis one (<see cref="RedisBuildLeases"/>) serves a cluster: one running build per project
/// across every node, and a build whose node stopped renewing is claimed by exactly one other node,
/// which ends it with <c>build:failed</c> <c>INTERRUPTED</c>.
/// </summary>
public interface IBuildLeases
{
    /// <summary>True when other processes share the leases (the runner then renews and sweeps on a timer).</summary>
    bool Shared { get; }

    /// <summary>Takes the project's lease for this build until <paramref name="expires"/>: null when taken, else the id of the build that holds it.</summary>
    ValueTask<string?> TryAcquireAsync(BuildRecord build, DateTimeOffset expires, CancellationToken cancellationToken = default);

    /// <summary>Extends the lease and records the build's phase; false when the lease was lost (claimed as expired).</summary>
    ValueTask<bool> RenewAsync(BuildRecord build, DateTimeOffset expires);

    /// <summary>
    /// Records the build's final state and gives the project's lease back. A build still
    /// "running" (the process is stopping) keeps its record so that it is ended as interrupted.
    /// </summary>
    ValueTask ReleaseAsync(BuildRecord build);

    /// <summary>
    /// The builds whose lease expired (locally: those recorded running by a process that is gone),
    /// each returned to exactly one caller, which must report it interrupted.
    /// </summary>
    ValueTask<IReadOnlyList<BuildRecord>> ClaimExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken = default);

    /// <summary>Asks the process running the build to cancel it; false when that build is not running anywhere.</summary>
    ValueTask<bool> RequestCancelAsync(string projectId, string buildId, string cancelledBy);

    /// <summary>Raised with (projectId, buildId, cancelledBy) when another process asks for a cancellation.</summary>
    event Action<string, string, string>? CancelRequested;
}

/// <summary>The leases of one process, recorded in its build store (memory or SQLite) to end interrupted builds after a restart.</summary>
public sealed class LocalBuildLeases(IBuildStore store) : IBuildLeases
{
    private readonly ConcurrentDictionary<string, string> _held = new(StringComparer.Ordinal);

    public bool Shared => false;

    public event Action<string, string, string>? CancelRequested
    {
        add { }
        remove { }
    }

    public async ValueTask<string?> TryAcquireAsync(BuildRecord build, DateTimeOffset expires, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(build);
        if (!_held.TryAdd(build.ProjectId, build.BuildId))
        {
            return _held.TryGetValue(build.ProjectId, out var holder) ? holder : string.Empty;
        }

        try
        {
            await store.SaveBuildAsync(build, cancellationToken);
            return null;
        }
        catch
        {
            // the project must not stay blocked by a build that never started
            _held.TryRemove(new KeyValuePair<string, string>(build.ProjectId, build.BuildId));
            throw;
        }
    }

    public async ValueTask<bool> RenewAsync(BuildRecord build, DateTimeOffset expires)
    {
        ArgumentNullException.ThrowIfNull(build);
        await store.SaveBuildAsync(build);
        return true;
    }

    public async ValueTask ReleaseAsync(BuildRecord build)
    {
        ArgumentNullException.ThrowIfNull(build);
        try
        {
            await store.SaveBuildAsync(build);
        }
        finally
        {
            _held.TryRemove(new KeyValuePair<string, string>(build.ProjectId, build.BuildId));
        }
    }

    public async ValueTask<IReadOnlyList<BuildRecord>> ClaimExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var claimed = new List<BuildRecord>();
        foreach (var build in await store.LoadRunningBuildsAsync(cancellationToken))
        {
            if (_held.TryGetValue(build.ProjectId, out var holder) && holder == build.BuildId)
            {
                continue;
            }

            claimed.Add(build);
        }

        return claimed;
    }

    public ValueTask<bool> RequestCancelAsync(string projectId, string buildId, string cancelledBy) => ValueTask.FromResult(false);
}

/// <summary>
/// Build leases in Redis for a cluster. <c>{prefix}build:project:{projectId}</c> holds the id of
/// the project's running build (set only when absent: one build per project across the nodes);
/// the sorted set <c>{prefix}builds:leases</c> holds <c>"{projectId} {buildId}"</c> scored by the
/// lease's expiry (ms), extended by the running node; <c>{prefix}build:{buildId}</c> the record.
/// Every node sweeps the sorted set; the Lua claim removes an expired member and the project's
/// hold in one step, so exactly one node ends each build. Cancellations of a build running on
/// another node travel on <c>{prefix}cluster:builds:cancel</c>.
/// </summary>
public sealed class RedisBuildLeases : IBuildLeases, IDisposable
{
    /// <summary>How long the record of an ended build stays.</summary>
    public static readonly TimeSpan EndedRetention = TimeSpan.FromDays(7);

    private const string AcquireScript = """
        local holder = redis.call('GET', KEYS[1])
        if holder then return holder end
        redis.call('SET', KEYS[1], ARGV[1])
        redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
        redis.call('SET', KEYS[3], ARGV[4])
        return ''
        """;

    private const string RenewScript = """
        if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
        redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[2])
        redis.call('SET', KEYS[2], ARGV[3])
        return 1
        """;

    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
        redis.call('ZREM', KEYS[2], ARGV[2])
        redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
        return 1
        """;

    private const string ClaimScript = """
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
        redis.call('ZREM', KEYS[1], ARGV[1])
        if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
        local record = redis.call('GET', KEYS[3])
        if record then redis.call('PEXPIRE', KEYS[3], ARGV[4]) else record = '' end
        return record
        """;

    private readonly IDatabase _db;
    private readonly ISubscriber _subscriber;
    private readonly RedisSubscription _subscription;
    private readonly string _prefix;
    private readonly RedisChannel _cancelChannel;

    public RedisBuildLeases(IConnectionMultiplexer redis, string prefix = "builder:")
    {
        ArgumentNullException.ThrowIfNull(redis);
        _db = redis.GetDatabase();
        _subscriber = redis.GetSubscriber();
        _prefix = prefix;
        _cancelChannel = RedisChannel.Literal(prefix + "cluster:builds:cancel");
        _subscription = new RedisSubscription(redis, _cancelChannel, OnCancel);
    }

    /// <summary>Completes once this node hears of the cancellations asked elsewhere.</summary>
    public Task Subscribed => _subscription.Subscribed;

    public bool Shared => true;

    public event Action<string, string, string>? CancelRequested;

    private RedisKey HoldKey(string projectId) => _prefix + "build:project:" + projectId;

    private RedisKey LeasesKey => _prefix + "builds:leases";

    private RedisKey RecordKey(string buildId) => _prefix + "build:" + buildId;

    private static string Member(BuildRecord build) => build.ProjectId + " " + build.BuildId;

    private static string Json(BuildRecord build) => JsonSerializer.Serialize(build, StoreJson.Options);

    public async ValueTask<string?> TryAcquireAsync(BuildRecord build, DateTimeOffset expires, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(build);
        var holder = (string?)await _db.ScriptEvaluateAsync(AcquireScript, [HoldKey(build.ProjectId), LeasesKey, RecordKey(build.BuildId)], [build.BuildId, expires.ToUnixTimeMilliseconds(), Member(build), Json(build)]);
        return string.IsNullOrEmpty(holder) ? null : holder;
    }

    public async ValueTask<bool> RenewAsync(BuildRecord build, DateTimeOffset expires)
    {
        ArgumentNullException.ThrowIfNull(build);
        return (int)await _db.ScriptEvaluateAsync(RenewScript, [LeasesKey, RecordKey(build.BuildId)], [expires.ToUnixTimeMilliseconds(), Member(build), Json(build)]) == 1;
    }

    public async ValueTask ReleaseAsync(BuildRecord build)
    {
        ArgumentNullException.ThrowIfNull(build);
        if (build.State == "running")
        {
            // the node is stopping: the lease runs out and another node ends the build
            return;
        }

        await _db.ScriptEvaluateAsync(ReleaseScript, [HoldKey(build.ProjectId), LeasesKey, RecordKey(build.BuildId)], [build.BuildId, Member(build), Json(build), (long)EndedRetention.TotalMilliseconds]);
    }

    public async ValueTask<IReadOnlyList<BuildRecord>> ClaimExpiredAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        var claimed = new List<BuildRecord>();
        var nowMs = now.ToUnixTimeMilliseconds();
        foreach (var member in await _db.SortedSetRangeByScoreAsync(LeasesKey, double.NegativeInfinity, nowMs, take: 100))
        {
            var text = (string)member!;
            var space = text.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0)
            {
                await _db.SortedSetRemoveAsync(LeasesKey, member);
                continue;
            }

            var (projectId, buildId) = (text[..space], text[(space + 1)..]);
            var record = await _db.ScriptEvaluateAsync(ClaimScript, [LeasesKey, HoldKey(projectId), RecordKey(buildId)], [text, nowMs, buildId, (long)EndedRetention.TotalMilliseconds]);
            if (record.IsNull)
            {
                // renewed meanwhile, or claimed by another node
                continue;
            }

            var json = (string)record!;
            var build = json.Length > 0 ? JsonSerializer.Deserialize<BuildRecord>(json, StoreJson.Options)! : new BuildRecord(buildId, projectId, "running", BuildPhases.Analyze, now);
            var ended = build with { State = "interrupted" };
            await _db.StringSetAsync(RecordKey(buildId), Json(ended), EndedRetention);
            claimed.Add(build);
        }

        return claimed;
    }

    public async ValueTask<bool> RequestCancelAsync(string projectId, string buildId, string cancelledBy)
    {
        if ((string?)await _db.StringGetAsync(HoldKey(projectId)) != buildId)
        {
            return false;
        }

        await _subscriber.PublishAsync(_cancelChannel, JsonSerializer.Serialize(new CancelNotice(projectId, buildId, cancelledBy), StoreJson.Options));
        return true;
    }

    private void OnCancel(RedisChannel channel, RedisValue message)
    {
        try
        {
            if (JsonSerializer.Deserialize<CancelNotice>((string)message!, StoreJson.Options) is { } notice)
            {
                CancelRequested?.Invoke(notice.ProjectId, notice.BuildId, notice.CancelledBy);
            }
        }
        catch (JsonException)
        {
            // not ours: ignored
        }
    }

    public void Dispose() => _subscription.Dispose();

    private sealed record CancelNotice(string ProjectId, string BuildId, string CancelledBy);
}
