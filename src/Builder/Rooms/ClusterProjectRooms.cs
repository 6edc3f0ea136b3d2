using System.Collections.Concurrent;
using Builder.Events;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SocketIO;
using StackExchange.Redis;

namespace Builder.Rooms;

/// <summary>
/// The rooms of a cluster node. The log's append script publishes every envelope on
/// <see cref="RedisEventLog.FeedChannel"/>, and Redis delivers them to each node in seq order;
/// this node hands each to its own sockets of the project's room (a local-only broadcast), so a
/// viewer gets every event once, in seq order, whichever node it and the producer are on. Per
/// project it remembers the last seq its room was given: an older one is skipped, a jump (feed
/// messages lost while Redis was away) is filled from the log first, and a join replays up to it.
/// Only projects with local viewers are followed. Members are counted across nodes in the hash
/// <c>builder:{id}:members</c> (fields <c>node|socket</c>), where a node's entries count while its
/// lease key <c>builder:node:{node}</c> lives.
/// </summary>
public sealed class ClusterProjectRooms : IProjectRooms, IHostedService, IDisposable
{
    private const string MembersScript = """
        local all = redis.call('HGETALL', KEYS[1])
        local alive = {}
        local users = {}
        local n = 0
        for i = 1, #all, 2 do
          local field = all[i]
          local node = string.match(field, '^([^|]+)|')
          local ok = node and alive[node]
          if node and ok == nil then
            ok = redis.call('EXISTS', ARGV[1] .. node) == 1
            alive[node] = ok
          end
          if ok then
            if not users[all[i + 1]] then
              users[all[i + 1]] = true
              n = n + 1
            end
          else
            redis.call('HDEL', KEYS[1], field)
          end
        end
        return n
        """;

    private const int FillPage = 500;
    private const string MembershipsKey = "builder.cluster.projects";
    private static readonly TimeSpan s_nodeLease = TimeSpan.FromSeconds(15);

    private readonly IConnectionMultiplexer _redis;
    private readonly IEventLog _log;
    private readonly SocketIONamespace _nsp;
    private readonly Hub.GatewayMetrics? _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger<ClusterProjectRooms> _logger;
    private readonly Dictionary<string, Feed> _feeds = new(StringComparer.Ordinal);

    // this node's memberships (field → project, user), written again when Redis comes back
    private readonly ConcurrentDictionary<string, (string ProjectId, string UserId)> _members = new(StringComparer.Ordinal);
    private ChannelMessageQueue? _queue;
    private ITimer? _leaseTimer;

    public ClusterProjectRooms(IConnectionMultiplexer redis, IEventLog log, SocketIONamespace nsp, TimeProvider time, ILogger<ClusterProjectRooms> logger, Hub.GatewayMetrics? metrics = null)
    {
        _redis = redis;
        _log = log;
        _nsp = nsp;
        _metrics = metrics;
        _time = time;
        _logger = logger;
    }

    /// <summary>This node's id in member entries and its lease key.</summary>
    public string NodeId { get; } = Guid.NewGuid().ToString("N");

    /// <summary>Whether this node receives the feed (readiness).</summary>
    public bool IsConnected => _redis.IsConnected;

    /// <summary>Feed messages skipped because the room already had them, and events filled from the log after a jump (metrics, tests).</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    public long Filled => Interlocked.Read(ref _filled);

    private long _skipped;
    private long _filled;

    private static RedisKey MembersKey(string projectId) => "builder:{" + projectId + "}:members";

    private RedisKey NodeKey => "builder:node:" + NodeId;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _queue = await _redis.GetSubscriber().SubscribeAsync(RedisChannel.Literal(RedisEventLog.FeedChannel));
        _queue.OnMessage(OnFeedAsync);
        _redis.ConnectionRestored += OnRestored;
        await RenewLeaseAsync();
        _leaseTimer = _time.CreateTimer(_ => _ = RenewLeaseAsync(), null, s_nodeLease / 3, s_nodeLease / 3);
        _logger.LogInformation("Cluster node {Node}: project events from {Channel}", NodeId, RedisEventLog.FeedChannel);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _leaseTimer?.Dispose();
        _redis.ConnectionRestored -= OnRestored;
        if (_queue is not null)
        {
            await _queue.UnsubscribeAsync();
        }

        try
        {
            await _redis.GetDatabase().KeyDeleteAsync(NodeKey);
        }
        catch (RedisException ex)
        {
            _logger.LogWarning(ex, "Could not delete the node lease on stopping (it expires by itself)");
        }
    }

    public void Dispose() => _leaseTimer?.Dispose();

    public void Deliver(EventEnvelope envelope)
    {
        // the feed delivers it, to every node alike, in seq order
    }

    public async Task<T> SwitchToLiveAsync<T>(string projectId, Func<long, Task<T>> action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        var feed = Acquire(projectId);
        try
        {
            await feed.Semaphore.WaitAsync(cancellationToken);
            try
            {
                var head = await _log.LatestSeqAsync(projectId, cancellationToken);
                if (feed.Delivered < 0)
                {
                    // no local viewer before: what is published from now on comes from the feed
                    feed.Delivered = head;
                }
                else if (feed.Delivered < head)
                {
                    // the feed is behind the log: the room gets the difference now, the feed's copies are skipped
                    await FillAsync(projectId, feed, head);
                }

                return await action(feed.Delivered);
            }
            finally
            {
                feed.Semaphore.Release();
            }
        }
        finally
        {
            Release(projectId, feed);
        }
    }

    public async Task<int> JoinAsync(SocketIOSocket socket, string projectId, string userId)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.Join(EventPublisher.Room(projectId));
        var field = NodeId + "|" + socket.Id + "|" + projectId;
        if (_members.TryAdd(field, (projectId, userId)))
        {
            var projects = (ConcurrentDictionary<string, byte>)socket.Data.GetOrAdd(MembershipsKey, key =>
            {
                socket.OnDisconnect(reason => _ = ForgetAsync(socket));
                return new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
            })!;
            projects[projectId] = 0;
        }

        var db = _redis.GetDatabase();
        await Guard(() => db.HashSetAsync(MembersKey(projectId), field, userId));
        var count = await Guard(() => db.ScriptEvaluateAsync(MembersScript, [MembersKey(projectId)], ["builder:node:"]));
        return (int)count;
    }

    public async Task LeaveAsync(SocketIOSocket socket, string projectId)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.Leave(EventPublisher.Room(projectId));
        if (socket.Data.GetValueOrDefault(MembershipsKey) is ConcurrentDictionary<string, byte> projects)
        {
            projects.TryRemove(projectId, out _);
        }

        await RemoveMemberAsync(socket.Id, projectId);
    }

    private async Task ForgetAsync(SocketIOSocket socket)
    {
        if (socket.Data.GetValueOrDefault(MembershipsKey) is not ConcurrentDictionary<string, byte> projects)
        {
            return;
        }

        foreach (var projectId in projects.Keys)
        {
            try
            {
                await RemoveMemberAsync(socket.Id, projectId);
            }
            catch (StoreUnavailableException ex)
            {
                // the entry is dropped by the first count after this node's lease expires, or when Redis returns
                _logger.LogDebug(ex, "Could not remove a member entry");
            }
        }
    }

    private Task RemoveMemberAsync(string socketId, string projectId)
    {
        var field = NodeId + "|" + socketId + "|" + projectId;
        _members.TryRemove(field, out _);
        return Guard(() => _redis.GetDatabase().HashDeleteAsync(MembersKey(projectId), field));
    }

    /// <summary>
    /// One feed message. Redis hands them over one at a time, for every project of the node, so this
    /// never waits: when the project is free and the message is the next one (or an old one), it is
    /// delivered here; otherwise (a join switching the project to live, a catch-up, a gap to fill
    /// from the log) it queues behind the project's earlier messages and that project's drainer
    /// delivers it, while the other projects' messages keep flowing.
    /// </summary>
    private Task OnFeedAsync(ChannelMessage message)
    {
        try
        {
            var envelope = RedisEventLog.Parse((string)message.Message!);
            Feed? feed;
            lock (_feeds)
            {
                if (!_feeds.TryGetValue(envelope.ProjectId, out feed))
                {
                    return Task.CompletedTask; // no viewer of the project on this node
                }

                feed.Users++;
            }

            var startDrainer = false;
            var inline = false;
            lock (feed.Pending)
            {
                if (feed.Pending.Count == 0 && !feed.Draining && feed.Semaphore.Wait(0))
                {
                    inline = true;
                }
                else
                {
                    feed.Pending.Enqueue(envelope);
                    startDrainer = !feed.Draining;
                    feed.Draining = true;
                }
            }

            if (inline)
            {
                try
                {
                    if (envelope.Seq <= feed.Delivered)
                    {
                        Interlocked.Increment(ref _skipped);
                    }
                    else if (envelope.Seq == feed.Delivered + 1)
                    {
                        Emit(envelope);
                        feed.Delivered = envelope.Seq;
                    }
                    else
                    {
                        // a gap: the log has to be read first, off this loop
                        lock (feed.Pending)
                        {
                            feed.Pending.Enqueue(envelope);
                            startDrainer = !feed.Draining;
                            feed.Draining = true;
                        }
                    }
                }
                finally
                {
                    feed.Semaphore.Release();
                }
            }

            if (startDrainer)
            {
                _ = DrainAsync(envelope.ProjectId, feed); // it releases the feed when done
            }
            else
            {
                Release(envelope.ProjectId, feed);
            }
        }
#pragma warning disable CA1031 // a bad message must never stop the feed
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "A feed message could not be read; the next one of its project fills the gap from the log");
        }

        return Task.CompletedTask;
    }

    /// <summary>Delivers a project's queued feed messages in order once the project is free, filling gaps from the log.</summary>
    private async Task DrainAsync(string projectId, Feed feed)
    {
        try
        {
            await feed.Semaphore.WaitAsync();
            try
            {
                while (true)
                {
                    EventEnvelope envelope;
                    lock (feed.Pending)
                    {
                        if (!feed.Pending.TryDequeue(out envelope!))
                        {
                            feed.Draining = false;
                            return;
                        }
                    }

                    try
                    {
                        if (envelope.Seq <= feed.Delivered)
                        {
                            Interlocked.Increment(ref _skipped);
                            continue;
                        }

                        if (envelope.Seq > feed.Delivered + 1)
                        {
                            await FillAsync(projectId, feed, envelope.Seq - 1);
                        }

                        Emit(envelope);
                        feed.Delivered = envelope.Seq;
                    }
#pragma warning disable CA1031 // an outage must never stop the feed; the next message fills the gap
                    catch (Exception ex)
#pragma warning restore CA1031
                    {
                        _logger.LogWarning(ex, "A feed message could not be delivered; the next one of its project fills the gap from the log");
                    }
                }
            }
            finally
            {
                feed.Semaphore.Release();
            }
        }
        finally
        {
            Release(projectId, feed);
        }
    }

    /// <summary>Gives the room the events after what it had up to <paramref name="until"/>, read from the log.</summary>
    private async Task FillAsync(string projectId, Feed feed, long until)
    {
        while (feed.Delivered < until)
        {
            var page = await _log.ReadAsync(projectId, feed.Delivered, FillPage);
            if (page.Count == 0)
            {
                // trimmed away: the room's viewers rejoin with lastSeq and get a snapshot
                feed.Delivered = until;
                break;
            }

            foreach (var e in page)
            {
                if (e.Seq > until)
                {
                    return;
                }

                Emit(e);
                feed.Delivered = e.Seq;
                Interlocked.Increment(ref _filled);
            }
        }
    }

    private void Emit(EventEnvelope envelope)
    {
        _nsp.Local.To(EventPublisher.Room(envelope.ProjectId)).Emit(envelope.Type, envelope);
        _metrics?.Delivered(envelope);
    }

    private Feed Acquire(string projectId)
    {
        lock (_feeds)
        {
            if (!_feeds.TryGetValue(projectId, out var feed))
            {
                _feeds[projectId] = feed = new Feed();
            }

            feed.Users++;
            return feed;
        }
    }

    /// <summary>Drops the project's feed when nobody uses it and its room has no local socket left.</summary>
    private void Release(string projectId, Feed feed)
    {
        lock (_feeds)
        {
            if (--feed.Users == 0 && _nsp.Adapter.Sockets(new HashSet<string>(StringComparer.Ordinal) { EventPublisher.Room(projectId) }).Count == 0)
            {
                _feeds.Remove(projectId);
            }
        }
    }

    private async Task RenewLeaseAsync()
    {
        try
        {
            await _redis.GetDatabase().StringSetAsync(NodeKey, "1", s_nodeLease);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            _logger.LogDebug(ex, "Could not renew the node lease");
        }
    }

    private void OnRestored(object? sender, ConnectionFailedEventArgs e) => _ = RecoverAsync();

    /// <summary>After an outage: the lease and this node's member entries written again, and every followed project caught up from the log.</summary>
    private async Task RecoverAsync()
    {
        try
        {
            await RenewLeaseAsync();
            var db = _redis.GetDatabase();
            foreach (var (field, (projectId, userId)) in _members)
            {
                await db.HashSetAsync(MembersKey(projectId), field, userId);
            }

            string[] projects;
            lock (_feeds)
            {
                projects = [.. _feeds.Keys];
            }

            foreach (var projectId in projects)
            {
                var feed = Acquire(projectId);
                try
                {
                    await feed.Semaphore.WaitAsync();
                    try
                    {
                        if (feed.Delivered >= 0)
                        {
                            await FillAsync(projectId, feed, await _log.LatestSeqAsync(projectId));
                        }
                    }
                    finally
                    {
                        feed.Semaphore.Release();
                    }
                }
                finally
                {
                    Release(projectId, feed);
                }
            }
        }
#pragma warning disable CA1031 // a later message or restoration retries
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogWarning(ex, "Catching up after Redis returned failed");
        }
    }

    private static async Task<T> Guard<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is RedisConnectionException or RedisTimeoutException
            || (ex is RedisServerException && ex.Message.StartsWith("LOADING", StringComparison.Ordinal)))
        {
            throw new StoreUnavailableException("Redis cannot be reached: " + ex.Message, ex);
        }
    }

    /// <summary>What this node's room of a project has had, and who uses the entry.</summary>
    private sealed class Feed
    {
        public readonly SemaphoreSlim Semaphore = new(1, 1);
        public readonly Queue<EventEnvelope> Pending = new(); // feed messages waiting for the project (under its own lock)
        public long Delivered = -1; // under the semaphore
        public bool Draining; // a drainer runs for Pending (under Pending's lock)
        public int Users; // under the lock of the dictionary
    }
}
