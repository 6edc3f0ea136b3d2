using System.Collections.Concurrent;
using StackExchange.Redis;

namespace Builder.Runner;

/// <summary>An outside agent's liveness lease.</summary>
public sealed record AgentLease(string ProjectId, string AgentId, string AgentType);

/// <summary>
/// The liveness leases of agents outside the process (<see cref="AgentLeaseMonitor"/>): in one
/// process (<see cref="LocalAgentLeases"/>) or in Redis for a cluster (<see cref="RedisAgentLeases"/>),
/// where an agent may report through any node and exactly one node reports it failed.
/// </summary>
public interface IAgentLeases
{
    /// <summary>Starts or extends a lease until <paramref name="expires"/>; with <paramref name="onlyIfHeld"/>, extends only.</summary>
    void Touch(string projectId, string agentId, string agentType, DateTimeOffset expires, bool onlyIfHeld);

    /// <summary>Ends a lease (the agent reported something other than "working").</summary>
    void Release(string projectId, string agentId);

    /// <summary>The leases expired at <paramref name="now"/>, each returned to exactly one caller; those <paramref name="exempt"/> says are exempt stay.</summary>
    ValueTask<IReadOnlyList<AgentLease>> ClaimExpiredAsync(DateTimeOffset now, Func<string, string, bool> exempt);
}

/// <summary>Agent leases in this process's memory.</summary>
public sealed class LocalAgentLeases : IAgentLeases
{
    private readonly ConcurrentDictionary<(string Project, string Agent), (string AgentType, DateTimeOffset Expires)> _leases = new();

    public void Touch(string projectId, string agentId, string agentType, DateTimeOffset expires, bool onlyIfHeld)
    {
        if (!onlyIfHeld || _leases.ContainsKey((projectId, agentId)))
        {
            _leases[(projectId, agentId)] = (agentType, expires);
        }
    }

    public void Release(string projectId, string agentId) => _leases.TryRemove((projectId, agentId), out _);

    public ValueTask<IReadOnlyList<AgentLease>> ClaimExpiredAsync(DateTimeOffset now, Func<string, string, bool> exempt)
    {
        ArgumentNullException.ThrowIfNull(exempt);
        var claimed = new List<AgentLease>();
        foreach (var (key, lease) in _leases)
        {
            if (lease.Expires > now || exempt(key.Project, key.Agent) || !_leases.TryRemove(new(key, lease)))
            {
                continue;
            }

            claimed.Add(new AgentLease(key.Project, key.Agent, lease.AgentType));
        }

        return ValueTask.FromResult<IReadOnlyList<AgentLease>>(claimed);
    }
}

/// <summary>
/// Agent leases in Redis: the sorted set <c>{prefix}agents:leases</c> of <c>"{projectId} {agentId}"</c>
/// scored by expiry (ms) and the hash <c>{prefix}agents:types</c> of their agent types; every node
/// sweeps, a Lua claim gives each expired lease to one node.
/// </summary>
public sealed class RedisAgentLeases(IConnectionMultiplexer redis, string prefix = "builder:") : IAgentLeases
{
    private const string TouchScript = """
        if ARGV[4] == '1' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        return 1
        """;

    private const string ClaimScript = """
        local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
        redis.call('ZREM', KEYS[1], ARGV[1])
        local agentType = redis.call('HGET', KEYS[2], ARGV[1]) or 'backend'
        redis.call('HDEL', KEYS[2], ARGV[1])
        return agentType
        """;

    private readonly IDatabase _db = redis.GetDatabase();
    private readonly RedisKey _leases = prefix + "agents:leases";
    private readonly RedisKey _types = prefix + "agents:types";

    public void Touch(string projectId, string agentId, string agentType, DateTimeOffset expires, bool onlyIfHeld) =>
        _db.ScriptEvaluate(TouchScript, [_leases, _types], [projectId + " " + agentId, expires.ToUnixTimeMilliseconds(), agentType, onlyIfHeld ? "1" : "0"], CommandFlags.FireAndForget);

    public void Release(string projectId, string agentId)
    {
        var member = projectId + " " + agentId;
        _db.SortedSetRemove(_leases, member, CommandFlags.FireAndForget);
        _db.HashDelete(_types, member, CommandFlags.FireAndForget);
    }

    public async ValueTask<IReadOnlyList<AgentLease>> ClaimExpiredAsync(DateTimeOffset now, Func<string, string, bool> exempt)
    {
        ArgumentNullException.ThrowIfNull(exempt);
        var claimed = new List<AgentLease>();
        var nowMs = now.ToUnixTimeMilliseconds();
        foreach (var value in await _db.SortedSetRangeByScoreAsync(_leases, double.NegativeInfinity, nowMs, take: 1000))
        {
            var member = (string)value!;
            var space = member.IndexOf(' ', StringComparison.Ordinal);
            if (space <= 0)
            {
                await _db.SortedSetRemoveAsync(_leases, value);
                continue;
            }

            var (projectId, agentId) = (member[..space], member[(space + 1)..]);
            if (exempt(projectId, agentId))
            {
                continue;
            }

            var agentType = await _db.ScriptEvaluateAsync(ClaimScript, [_leases, _types], [member, nowMs]);
            if (!agentType.IsNull)
            {
                claimed.Add(new AgentLease(projectId, agentId, (string)agentType!));
            }
        }

        return claimed;
    }
}
