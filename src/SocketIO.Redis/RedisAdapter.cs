using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SocketIO.Adapters;
using SocketIO.Parser;
using StackExchange.Redis;

namespace SocketIO.Redis;

/// <summary>
/// A namespace's adapter that shares broadcasts and requests with the other nodes of a cluster
/// over Redis Pub/Sub, in the wire format of <c>@socket.io/redis-adapter</c> 8.x (classic adapter)
/// so that .NET and Node.js servers (and <c>@socket.io/redis-emitter</c>) can share one cluster.
/// Local delivery never depends on Redis: while it is down, broadcasts reach this node's sockets
/// and the publish is dropped (logged).
/// </summary>
public sealed class RedisAdapter : InMemoryAdapter
{
    private const int SocketsRequest = 0;
    private const int AllRoomsRequest = 1;
    private const int RemoteJoin = 2;
    private const int RemoteLeave = 3;
    private const int RemoteDisconnect = 4;
    private const int RemoteFetch = 5;
    private const int ServerSideEmitRequest = 6;
    private const int BroadcastRequest = 7;
    private const int BroadcastClientCount = 8;
    private const int BroadcastAck = 9;

    private const string UidAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    private readonly IConnectionMultiplexer _redis;
    private readonly ISubscriber _subscriber;
    private readonly RedisAdapterOptions _options;
    private readonly ILogger _log;
    private readonly string _channel;
    private readonly string _requestChannel;
    private readonly string _responseChannel;
    private readonly string _specificResponseChannel;
    private readonly ConcurrentDictionary<string, PendingRequest> _requests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, AckCollector> _ackRequests = new(StringComparer.Ordinal);
    private readonly List<ChannelMessageQueue> _queues = [];
    private readonly CancellationTokenSource _disposed = new();
    private readonly JsonPacketParser _parser;
    private readonly byte[] _ownPrefix;
    private long _publishFailures;

    /// <summary>The adapter of <paramref name="nsp"/>, joining the cluster over <paramref name="redis"/>.</summary>
    public RedisAdapter(SocketIONamespace nsp, IConnectionMultiplexer redis, RedisAdapterOptions options, ILogger<RedisAdapter>? logger = null)
        : base(nsp)
    {
        ArgumentNullException.ThrowIfNull(nsp);
        ArgumentNullException.ThrowIfNull(redis);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _parser = nsp.Server.Parser as JsonPacketParser
            ?? throw new NotSupportedException("The Redis adapter needs the default JSON packet parser.");
        _redis = redis;
        _subscriber = redis.GetSubscriber();
        _options = options;
        _log = logger ?? NullLogger<RedisAdapter>.Instance;
        Uid = NewUid();
        _channel = options.Key + "#" + nsp.Name + "#";
        _requestChannel = options.Key + "-request#" + nsp.Name + "#";
        _responseChannel = options.Key + "-response#" + nsp.Name + "#";
        _specificResponseChannel = _responseChannel + Uid + "#";
        _ownPrefix = [0x93, (byte)(0xa0 | Uid.Length), .. Encoding.ASCII.GetBytes(Uid)];
        Subscribed = SubscribeAsync();
    }

    /// <summary>This node's id in the cluster (Node's <c>uid2(6)</c>).</summary>
    public string Uid { get; }

    /// <summary>Completes once the adapter's channels are subscribed (retried while Redis is unreachable).</summary>
    public Task Subscribed { get; }

    /// <summary>Whether the Redis connection is up (broadcasts reach other nodes).</summary>
    public bool IsConnected => _redis.IsConnected;

    /// <summary>Publishes (broadcasts, requests, responses) dropped because Redis was unreachable.</summary>
    public long PublishFailures => Interlocked.Read(ref _publishFailures);

    /// <summary>Called on each dropped publish (the runtime's metrics and health).</summary>
    internal Action? PublishFailed { get; init; }

    // ---- subscriptions ----

    private async Task SubscribeAsync()
    {
        for (var attempt = 0; !_disposed.IsCancellationRequested; attempt++)
        {
            try
            {
                var broadcast = await _subscriber.SubscribeAsync(RedisChannel.Pattern(_channel + "*"));
                broadcast.OnMessage(OnBroadcastMessage);
                AddQueue(broadcast);
                foreach (var name in new[] { _requestChannel, _responseChannel, _specificResponseChannel })
                {
                    var queue = await _subscriber.SubscribeAsync(RedisChannel.Literal(name));
                    queue.OnMessage(OnRequestMessage);
                    AddQueue(queue);
                }

                _log.LogDebug("Redis adapter {Uid} subscribed to {Channel}", Uid, _channel);
                return;
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                if (attempt == 0)
                {
                    _log.LogWarning(ex, "Redis adapter for {Nsp}: subscribing failed, retrying every second (local delivery goes on)", Namespace.Name);
                }

                foreach (var queue in TakeQueues())
                {
                    await SafeUnsubscribeAsync(queue);
                }

                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _disposed.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void AddQueue(ChannelMessageQueue queue)
    {
        lock (_queues)
        {
            _queues.Add(queue);
        }
    }

    private List<ChannelMessageQueue> TakeQueues()
    {
        lock (_queues)
        {
            var taken = new List<ChannelMessageQueue>(_queues);
            _queues.Clear();
            return taken;
        }
    }

    private static async Task SafeUnsubscribeAsync(ChannelMessageQueue queue)
    {
        try
        {
            await queue.UnsubscribeAsync();
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            // the connection is gone: nothing to undo
        }
    }

    // ---- broadcasts ----

    /// <inheritdoc/>
    public override void Broadcast(BroadcastMessage message, BroadcastOptions options)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Local)
        {
            var packet = WirePacket(message, null);
            var flags = new Dictionary<string, object?>(StringComparer.Ordinal);
            if (options.Volatile)
            {
                flags["volatile"] = true;
            }

            var wire = MsgPack.Encode(new List<object?> { Uid, packet, WireOptions(options, flags) });
            var channel = options.Rooms.Count == 1 ? _channel + options.Rooms.First() + "#" : _channel;
            Publish(channel, wire);
        }

        base.Broadcast(message, options);
    }

    private void OnBroadcastMessage(ChannelMessage message)
    {
        try
        {
            var channel = message.Channel.ToString();
            if (!channel.StartsWith(_channel, StringComparison.Ordinal) || channel.Length < _channel.Length)
            {
                return;
            }

            var room = channel.Length > _channel.Length ? channel[_channel.Length..^1] : string.Empty;
            if (room.Length > 0 && Sockets(new HashSet<string>(StringComparer.Ordinal) { room }).Count == 0)
            {
                return; // no local member: Node skips the decoding too
            }

            var bytes = (byte[])message.Message!;
            if (bytes.AsSpan().StartsWith(_ownPrefix))
            {
                return; // our own broadcast, echoed by Redis: skipped before decoding
            }

            if (MsgPack.Decode(bytes) is not List<object?> { Count: >= 3 } array
                || array[1] is not Dictionary<string, object?> packet)
            {
                return;
            }

            if (array[0] is string uid && string.Equals(uid, Uid, StringComparison.Ordinal))
            {
                return;
            }

            var nsp = packet.TryGetValue("nsp", out var n) && n is string s ? s : "/";
            if (!string.Equals(nsp, Namespace.Name, StringComparison.Ordinal) || !TryReadEvent(packet, out var eventMessage))
            {
                return;
            }

            base.Broadcast(eventMessage, ReadOptions(array[2]));
        }
#pragma warning disable CA1031 // a bad message from another node must not stop the subscription's loop
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _log.LogDebug(ex, "Redis adapter {Uid}: ignoring a malformed broadcast", Uid);
        }
    }

    /// <inheritdoc/>
    public override async Task<BroadcastAckResult> BroadcastWithAckAsync(BroadcastMessage message, BroadcastOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Local)
        {
            return await base.BroadcastWithAckAsync(message, options, cancellationToken);
        }

        var timeout = options.Timeout ?? TimeSpan.FromSeconds(5);
        var requestId = NewUid();
        var collector = new AckCollector();
        _ackRequests[requestId] = collector;
        try
        {
            var flags = new Dictionary<string, object?>(StringComparer.Ordinal) { ["timeout"] = (long)timeout.TotalMilliseconds };
            if (options.Volatile)
            {
                flags["volatile"] = true;
            }

            Publish(_requestChannel, MsgPack.Encode(new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["uid"] = Uid,
                ["requestId"] = requestId,
                ["type"] = (long)BroadcastRequest,
                ["packet"] = WirePacket(message, null),
                ["opts"] = WireOptions(options, flags),
            }));

            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            var local = base.BroadcastWithAckAsync(message, options with { Timeout = timeout }, cancellationToken);
            var servers = await ServerCountOrOneAsync(deadline.Token);
            var complete = await collector.WaitAsync(servers - 1, deadline.Token);
            var localResult = await local;
            var remote = collector.Responses();
            var responses = new List<AckResponse>(localResult.Responses.Count + remote.Count);
            responses.AddRange(localResult.Responses);
            responses.AddRange(remote);
            return new BroadcastAckResult(responses, localResult.Expected + collector.ClientCount, localResult.TimedOut || !complete);
        }
        finally
        {
            _ackRequests.TryRemove(requestId, out _);
        }
    }

    // ---- remote operations ----

    /// <inheritdoc/>
    public override Task<IReadOnlyList<RemoteSocket>> FetchSocketsAsync(BroadcastOptions options, CancellationToken cancellationToken) =>
        FetchAllAsync(options, cancellationToken);

    private async Task<IReadOnlyList<RemoteSocket>> FetchAllAsync(BroadcastOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var local = await base.FetchSocketsAsync(options, cancellationToken);
        if (options.Local)
        {
            return local;
        }

        var responses = await RequestAsync(RemoteFetch, new Dictionary<string, object?>(StringComparer.Ordinal) { ["opts"] = RoomsOnly(options) }, cancellationToken);
        var result = new List<RemoteSocket>(local);
        foreach (var response in responses)
        {
            if (response.TryGetProperty("sockets", out var sockets) && sockets.ValueKind == JsonValueKind.Array)
            {
                foreach (var socket in sockets.EnumerateArray())
                {
                    if (ReadRemoteSocket(socket) is { } remote)
                    {
                        result.Add(remote);
                    }
                }
            }
        }

        return result;
    }

    /// <summary>The rooms of every node (Node's <c>adapter.allRooms()</c>); throws <see cref="TimeoutException"/> when a node does not answer in time.</summary>
    public async Task<IReadOnlySet<string>> AllRoomsAsync(CancellationToken cancellationToken = default)
    {
        var rooms = new HashSet<string>(Rooms, StringComparer.Ordinal);
        foreach (var response in await RequestAsync(AllRoomsRequest, [], cancellationToken))
        {
            if (response.TryGetProperty("rooms", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var room in list.EnumerateArray())
                {
                    if (room.ValueKind == JsonValueKind.String)
                    {
                        rooms.Add(room.GetString()!);
                    }
                }
            }
        }

        return rooms;
    }

    /// <summary>The number of nodes serving this namespace: subscribers of its request channel (<c>PUBSUB NUMSUB</c>).</summary>
    public async Task<int> ServerCountAsync()
    {
        var result = await _redis.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", _requestChannel);
        var items = (RedisResult[])result!;
        return items.Length >= 2 ? (int)items[1] : 0;
    }

    /// <inheritdoc/>
    public override void AddSockets(BroadcastOptions options, IReadOnlyList<string> rooms)
    {
        ArgumentNullException.ThrowIfNull(options);
        base.AddSockets(options, rooms);
        if (!options.Local)
        {
            PublishJson(_requestChannel, new Dictionary<string, object?> { ["uid"] = Uid, ["type"] = RemoteJoin, ["opts"] = RoomsOnly(options), ["rooms"] = rooms });
        }
    }

    /// <inheritdoc/>
    public override void DelSockets(BroadcastOptions options, IReadOnlyList<string> rooms)
    {
        ArgumentNullException.ThrowIfNull(options);
        base.DelSockets(options, rooms);
        if (!options.Local)
        {
            PublishJson(_requestChannel, new Dictionary<string, object?> { ["uid"] = Uid, ["type"] = RemoteLeave, ["opts"] = RoomsOnly(options), ["rooms"] = rooms });
        }
    }

    /// <inheritdoc/>
    public override void DisconnectSockets(BroadcastOptions options, bool close)
    {
        ArgumentNullException.ThrowIfNull(options);
        base.DisconnectSockets(options, close);
        if (!options.Local)
        {
            PublishJson(_requestChannel, new Dictionary<string, object?> { ["uid"] = Uid, ["type"] = RemoteDisconnect, ["opts"] = RoomsOnly(options), ["close"] = close });
        }
    }

    /// <summary>
    /// Sends a request to the other nodes and gathers their answers: as many as there are nodes
    /// (less this one), else <see cref="TimeoutException"/> after <see cref="RedisAdapterOptions.RequestsTimeout"/>.
    /// </summary>
    private async Task<IReadOnlyList<JsonElement>> RequestAsync(int type, Dictionary<string, object?> body, CancellationToken cancellationToken)
    {
        var (responses, expected) = await RequestCoreAsync(type, body, cancellationToken);
        return responses.Count >= expected
            ? responses
            : throw new TimeoutException($"timeout reached: only {responses.Count} responses received out of {expected}");
    }

    /// <summary>The answers gathered before the deadline, and how many nodes were expected to answer.</summary>
    private async Task<(IReadOnlyList<JsonElement> Responses, int Expected)> RequestCoreAsync(int type, Dictionary<string, object?> body, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RequestsTimeout);
        int servers;
        try
        {
            servers = await ServerCountAsync().WaitAsync(deadline.Token);
        }
        catch (Exception ex) when (ex is RedisException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Redis adapter: the server count is unavailable ({ex.Message}).", ex);
        }

        if (servers <= 1)
        {
            return ([], 0);
        }

        var requestId = NewUid();
        var pending = new PendingRequest(servers - 1);
        _requests[requestId] = pending;
        try
        {
            body["uid"] = Uid;
            body["requestId"] = requestId;
            body["type"] = type;
            PublishJson(_requestChannel, body);
            try
            {
                await pending.Done.Task.WaitAsync(deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // timed out: the caller decides what a partial result means
            }

            return (pending.Snapshot(), pending.Expected);
        }
        finally
        {
            _requests.TryRemove(requestId, out _);
        }
    }

    private async Task<int> ServerCountOrOneAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await ServerCountAsync().WaitAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is RedisException or OperationCanceledException)
        {
            return 1;
        }
    }

    // ---- requests from other nodes ----

    private void OnRequestMessage(ChannelMessage message)
    {
        var channel = message.Channel.ToString();
        var bytes = (byte[])message.Message!;
        if (bytes.Length == 0)
        {
            return;
        }

        try
        {
            if (channel.StartsWith(_responseChannel, StringComparison.Ordinal))
            {
                OnResponse(bytes);
            }
            else if (string.Equals(channel, _requestChannel, StringComparison.Ordinal))
            {
                OnRequest(bytes);
            }
        }
#pragma warning disable CA1031 // a bad message from another node must not stop the subscription's loop
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _log.LogDebug(ex, "Redis adapter {Uid}: ignoring a malformed message on {Channel}", Uid, channel);
        }
    }

    private static Dictionary<string, object?>? Parse(byte[] bytes)
    {
        if (bytes[0] == (byte)'{')
        {
            using var doc = JsonDocument.Parse(bytes);
            return MsgPack.FromJson(doc.RootElement, []) as Dictionary<string, object?>;
        }

        return MsgPack.Decode(bytes) as Dictionary<string, object?>;
    }

    private void OnRequest(byte[] bytes)
    {
        if (Parse(bytes) is not { } request || !request.TryGetValue("type", out var t) || t is not long type)
        {
            return;
        }

        var requestId = request.TryGetValue("requestId", out var r) ? r as string : null;
        var fromSelf = request.TryGetValue("uid", out var u) && u is string uid && string.Equals(uid, Uid, StringComparison.Ordinal);
        switch (type)
        {
            case SocketsRequest when !fromSelf && requestId is not null:
                PublishResponse(request, new Dictionary<string, object?> { ["requestId"] = requestId, ["sockets"] = Sockets(ReadSet(request, "rooms")) });
                break;
            case AllRoomsRequest when !fromSelf && requestId is not null:
                PublishResponse(request, new Dictionary<string, object?> { ["requestId"] = requestId, ["rooms"] = Rooms });
                break;
            case RemoteJoin or RemoteLeave or RemoteDisconnect when !fromSelf:
                OnRemoteOperation((int)type, request, requestId);
                break;
            case RemoteFetch when !fromSelf && requestId is not null:
                PublishResponse(request, new Dictionary<string, object?> { ["requestId"] = requestId, ["sockets"] = LocalSocketsForFetch(ReadOptions(request.GetValueOrDefault("opts"))) });
                break;
            case ServerSideEmitRequest when !fromSelf:
                OnServerSideEmit(request, requestId);
                break;
            case BroadcastRequest when requestId is not null && !_ackRequests.ContainsKey(requestId):
                _ = AnswerBroadcastWithAckAsync(request, requestId);
                break;
        }
    }

    private void OnRemoteOperation(int type, Dictionary<string, object?> request, string? requestId)
    {
        if (request.GetValueOrDefault("opts") is Dictionary<string, object?>)
        {
            var options = ReadOptions(request["opts"]);
            var rooms = ReadList(request, "rooms");
            switch (type)
            {
                case RemoteJoin:
                    base.AddSockets(options, rooms);
                    break;
                case RemoteLeave:
                    base.DelSockets(options, rooms);
                    break;
                default:
                    base.DisconnectSockets(options, request.GetValueOrDefault("close") is true);
                    break;
            }

            return;
        }

        // the older form naming one socket: answered when the socket is here
        if (request.GetValueOrDefault("sid") is not string sid || !Namespace.Sockets.TryGetValue(sid, out var socket))
        {
            return;
        }

        var room = request.GetValueOrDefault("room") as string;
        switch (type)
        {
            case RemoteJoin when room is not null:
                socket.Join(room);
                break;
            case RemoteLeave when room is not null:
                socket.Leave(room);
                break;
            case RemoteDisconnect:
                socket.Disconnect(request.GetValueOrDefault("close") is true);
                break;
        }

        PublishResponse(request, new Dictionary<string, object?> { ["requestId"] = requestId });
    }

    /// <summary>
    /// Called with the arguments of a server-side emit from another node (Node's
    /// <c>io.serverSideEmit</c>); with an ack callback when the sender waits for one answer per node.
    /// </summary>
    public event Action<IReadOnlyList<object?>, Action<object?>?>? ServerSideEmitReceived;

    private void OnServerSideEmit(Dictionary<string, object?> request, string? requestId)
    {
        if (request.GetValueOrDefault("data") is not List<object?> data)
        {
            return;
        }

        Action<object?>? ack = null;
        if (requestId is not null)
        {
            var called = 0;
            ack = value =>
            {
                if (Interlocked.Exchange(ref called, 1) == 0)
                {
                    PublishJson(_responseChannel, new Dictionary<string, object?> { ["type"] = ServerSideEmitRequest, ["requestId"] = requestId, ["data"] = value });
                }
            };
        }

        ServerSideEmitReceived?.Invoke(data, ack);
    }

    /// <summary>
    /// Sends an event (<paramref name="data"/> = name then arguments) to the other nodes'
    /// <see cref="ServerSideEmitReceived"/> handlers and Node's <c>io.on(name)</c>. With
    /// <paramref name="withAck"/>, waits for one answer per other node up to
    /// <see cref="RedisAdapterOptions.RequestsTimeout"/>: on timeout the answers received so far
    /// come back with <see cref="ServerSideEmitResult.TimedOut"/> (Node's <c>(err, responses)</c>).
    /// </summary>
    public async Task<ServerSideEmitResult> ServerSideEmitAsync(object?[] data, bool withAck, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (!withAck)
        {
            PublishJson(_requestChannel, new Dictionary<string, object?> { ["uid"] = Uid, ["type"] = ServerSideEmitRequest, ["data"] = data });
            return new ServerSideEmitResult([], 0, false);
        }

        var (answers, expected) = await RequestCoreAsync(ServerSideEmitRequest, new Dictionary<string, object?> { ["data"] = data }, cancellationToken);
        return new ServerSideEmitResult([.. answers.Select(a => a.TryGetProperty("data", out var d) ? d : default)], expected, answers.Count < expected);
    }

    private async Task AnswerBroadcastWithAckAsync(Dictionary<string, object?> request, string requestId)
    {
        try
        {
            if (request.GetValueOrDefault("packet") is not Dictionary<string, object?> packet || !TryReadEvent(packet, out var message))
            {
                return;
            }

            var options = ReadOptions(request.GetValueOrDefault("opts"));
            options = options with { Timeout = options.Timeout ?? _options.RequestsTimeout };
            var count = 0;
            Apply(options, (_, _) => count++, (object?)null);
            PublishResponse(request, new Dictionary<string, object?> { ["type"] = BroadcastClientCount, ["requestId"] = requestId, ["clientCount"] = count });
            if (count == 0)
            {
                return;
            }

            // each ack goes back the moment its client answers, as the Node.js adapter does
            await BroadcastWithAckAsync(
                message,
                options,
                response =>
                {
                    var arg = response.Count > 0 ? MsgPack.FromJson(response[0], response.Attachments) : null;
                    PublishResponse(request, MsgPack.Encode(new Dictionary<string, object?>(StringComparer.Ordinal)
                    {
                        ["type"] = (long)BroadcastAck,
                        ["requestId"] = requestId,
                        ["packet"] = arg,
                    }));
                },
                _disposed.Token);
        }
        catch (OperationCanceledException)
        {
            // disposed
        }
    }

    private void OnResponse(byte[] bytes)
    {
        if (bytes[0] == (byte)'{')
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (!root.TryGetProperty("requestId", out var id) || id.ValueKind != JsonValueKind.String)
            {
                return;
            }

            var requestId = id.GetString()!;
            if (_ackRequests.TryGetValue(requestId, out var collector))
            {
                if (root.TryGetProperty("type", out var type) && type.TryGetInt32(out var t) && t == BroadcastClientCount
                    && root.TryGetProperty("clientCount", out var count) && count.TryGetInt32(out var c))
                {
                    collector.AddClientCount(c);
                }

                return;
            }

            if (_requests.TryGetValue(requestId, out var pending))
            {
                pending.Add(root.Clone());
            }

            return;
        }

        if (MsgPack.Decode(bytes) is Dictionary<string, object?> response
            && response.GetValueOrDefault("requestId") is string ackId
            && response.GetValueOrDefault("type") is long and BroadcastAck
            && _ackRequests.TryGetValue(ackId, out var acks))
        {
            acks.AddAck(ToAckResponse(response.GetValueOrDefault("packet")));
        }
    }

    // ---- wire helpers ----

    private Dictionary<string, object?> WirePacket(BroadcastMessage message, long? id)
    {
        var data = new object?[message.Args.Length + 1];
        data[0] = message.EventName;
        message.Args.CopyTo(data, 1);

        // the parser serializes the arguments (the application's JSON options, byte[] as
        // attachments); the adapter's wire carries them inline, as Node's does
        var encoded = _parser.Encode(SocketPacketType.Event, Namespace.Name, null, data);
        var frame = encoded.Messages[0].Frame.Span;
        var start = frame.IndexOf((byte)'[');
        using var doc = JsonDocument.Parse(encoded.Messages[0].Frame[start..]);
        var attachments = new ReadOnlyMemory<byte>[encoded.Messages.Length - 1];
        for (var i = 1; i < encoded.Messages.Length; i++)
        {
            attachments[i - 1] = encoded.Messages[i].Data;
        }

        var packet = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["type"] = 2L,
            ["data"] = MsgPack.FromJson(doc.RootElement, attachments),
            ["nsp"] = Namespace.Name,
        };
        if (id is not null)
        {
            packet["id"] = id.Value;
        }

        return packet;
    }

    private static Dictionary<string, object?> WireOptions(BroadcastOptions options, Dictionary<string, object?> flags) => new(StringComparer.Ordinal)
    {
        ["rooms"] = options.Rooms.Cast<object?>().ToList(),
        ["except"] = options.Except.Cast<object?>().ToList(),
        ["flags"] = flags,
    };

    private static Dictionary<string, object?> RoomsOnly(BroadcastOptions options) => new(StringComparer.Ordinal)
    {
        ["rooms"] = options.Rooms.ToList(),
        ["except"] = options.Except.ToList(),
    };

    private static bool TryReadEvent(Dictionary<string, object?> packet, out BroadcastMessage message)
    {
        message = null!;
        if (packet.GetValueOrDefault("data") is not List<object?> { Count: >= 1 } data || data[0] is not string eventName)
        {
            return false;
        }

        message = new BroadcastMessage(eventName, [.. data.Skip(1)]);
        return true;
    }

    private static BroadcastOptions ReadOptions(object? raw)
    {
        if (raw is not Dictionary<string, object?> opts)
        {
            return BroadcastOptions.All;
        }

        var flags = opts.GetValueOrDefault("flags") as Dictionary<string, object?>;
        TimeSpan? timeout = flags?.GetValueOrDefault("timeout") switch
        {
            long ms when ms > 0 => TimeSpan.FromMilliseconds(ms),
            double ms when ms > 0 => TimeSpan.FromMilliseconds(ms),
            _ => null,
        };
        return new BroadcastOptions
        {
            Rooms = ReadSet(opts, "rooms"),
            Except = ReadSet(opts, "except"),
            Volatile = flags?.GetValueOrDefault("volatile") is true,
            Timeout = timeout,
        };
    }

    private static HashSet<string> ReadSet(Dictionary<string, object?> map, string key) => new(ReadList(map, key), StringComparer.Ordinal);

    private static List<string> ReadList(Dictionary<string, object?> map, string key)
    {
        var result = new List<string>();
        if (map.GetValueOrDefault(key) is List<object?> list)
        {
            foreach (var item in list)
            {
                // Node rooms may be numbers; they are strings here
                if (Convert.ToString(item, CultureInfo.InvariantCulture) is { } room)
                {
                    result.Add(room);
                }
            }
        }

        return result;
    }

    private List<Dictionary<string, object?>> LocalSocketsForFetch(BroadcastOptions options)
    {
        var result = new List<Dictionary<string, object?>>();
        Apply(options, (socket, _) =>
        {
            var handshake = socket.Handshake;
            result.Add(new Dictionary<string, object?>
            {
                ["id"] = socket.Id,
                ["handshake"] = new Dictionary<string, object?>
                {
                    ["headers"] = handshake.Headers.ToDictionary(StringComparer.Ordinal),
                    ["time"] = handshake.Time.ToString("R", CultureInfo.InvariantCulture),
                    ["address"] = handshake.Address?.ToString(),
                    ["xdomain"] = handshake.Headers.ContainsKey("origin"),
                    ["secure"] = handshake.Secure,
                    ["issued"] = handshake.Time.ToUnixTimeMilliseconds(),
                    ["url"] = handshake.Url,
                    ["query"] = handshake.Query.ToDictionary(StringComparer.Ordinal),
                    ["auth"] = handshake.Auth,
                },
                ["rooms"] = socket.Rooms.ToList(),
                ["data"] = new Dictionary<string, object?>(socket.Data),
            });
        }, (object?)null);
        return result;
    }

    private RemoteSocket? ReadRemoteSocket(JsonElement socket)
    {
        if (!socket.TryGetProperty("id", out var id) || id.ValueKind != JsonValueKind.String)
        {
            return null;
        }

        var rooms = new HashSet<string>(StringComparer.Ordinal);
        if (socket.TryGetProperty("rooms", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var room in list.EnumerateArray())
            {
                rooms.Add(room.ValueKind == JsonValueKind.String ? room.GetString()! : room.GetRawText());
            }
        }

        var data = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (socket.TryGetProperty("data", out var d) && d.ValueKind == JsonValueKind.Object)
        {
            foreach (var property in d.EnumerateObject())
            {
                data[property.Name] = property.Value.Clone();
            }
        }

        var auth = socket.TryGetProperty("handshake", out var handshake) && handshake.ValueKind == JsonValueKind.Object
            && handshake.TryGetProperty("auth", out var a) ? a.Clone() : default;
        return new RedisRemoteSocket(this, id.GetString()!, rooms, data, auth);
    }

    private AckResponse ToAckResponse(object? arg)
    {
        var attachments = new List<ReadOnlyMemory<byte>>();
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            WriteJson(writer, arg, attachments, 0);
            writer.WriteEndArray();
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return AckResponse.FromRemote(string.Empty, doc.RootElement.Clone(), attachments, Namespace.Server.SerializerOptions);
    }

    private static void WriteJson(Utf8JsonWriter writer, object? value, List<ReadOnlyMemory<byte>> attachments, int depth)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case bool b:
                writer.WriteBooleanValue(b);
                break;
            case string s:
                writer.WriteStringValue(s);
                break;
            case long l:
                writer.WriteNumberValue(l);
                break;
            case ulong ul:
                writer.WriteNumberValue(ul);
                break;
            case double d when double.IsFinite(d):
                writer.WriteNumberValue(d);
                break;
            case double:
                writer.WriteNullValue();
                break;
            case byte[] bytes:
                writer.WriteStartObject();
                writer.WriteBoolean("_placeholder", true);
                writer.WriteNumber("num", attachments.Count);
                writer.WriteEndObject();
                attachments.Add(bytes);
                break;
            case Dictionary<string, object?> map:
                writer.WriteStartObject();
                foreach (var (key, item) in map)
                {
                    writer.WritePropertyName(key);
                    WriteJson(writer, item, attachments, depth + 1);
                }

                writer.WriteEndObject();
                break;
            case List<object?> list:
                writer.WriteStartArray();
                foreach (var item in list)
                {
                    WriteJson(writer, item, attachments, depth + 1);
                }

                writer.WriteEndArray();
                break;
            default:
                writer.WriteNullValue();
                break;
        }
    }

    private void PublishResponse(Dictionary<string, object?> request, object response)
    {
        var channel = _options.PublishOnSpecificResponseChannel && request.GetValueOrDefault("uid") is string uid
            ? _responseChannel + uid + "#"
            : _responseChannel;
        if (response is byte[] bytes)
        {
            Publish(channel, bytes);
        }
        else
        {
            PublishJson(channel, response);
        }
    }

    private void PublishJson(string channel, object body) =>
        Publish(channel, JsonSerializer.SerializeToUtf8Bytes(body, body.GetType(), Namespace.Server.SerializerOptions));

    private void Publish(string channel, byte[] payload)
    {
        Task<long> sent;
        try
        {
            sent = _subscriber.PublishAsync(RedisChannel.Literal(channel), payload);
        }
        catch (RedisException ex)
        {
            Interlocked.Increment(ref _publishFailures);
            PublishFailed?.Invoke();
            _log.LogDebug(ex, "Redis adapter {Uid}: publish to {Channel} dropped", Uid, channel);
            return;
        }

        if (!sent.IsCompletedSuccessfully)
        {
            _ = ObservePublishAsync(sent, channel);
        }
    }

    private async Task ObservePublishAsync(Task<long> sent, string channel)
    {
        try
        {
            await sent;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Interlocked.Increment(ref _publishFailures);
            PublishFailed?.Invoke();
            _log.LogDebug(ex, "Redis adapter {Uid}: publish to {Channel} dropped", Uid, channel);
        }
    }

    private static string NewUid()
    {
        Span<char> chars = stackalloc char[6];
        for (var i = 0; i < chars.Length; i++)
        {
            chars[i] = UidAlphabet[RandomNumberGenerator.GetInt32(UidAlphabet.Length)];
        }

        return new string(chars);
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed.IsCancellationRequested)
        {
            _disposed.Cancel();
            foreach (var queue in TakeQueues())
            {
                _ = SafeUnsubscribeAsync(queue);
            }

            _disposed.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>An answer-gathering request (fetch sockets, all rooms, server-side emit with ack).</summary>
    private sealed class PendingRequest(int expected)
    {
        private readonly List<JsonElement> _responses = [];

        public int Expected { get; } = expected;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Count
        {
            get
            {
                lock (_responses)
                {
                    return _responses.Count;
                }
            }
        }

        public void Add(JsonElement response)
        {
            lock (_responses)
            {
                _responses.Add(response);
                if (_responses.Count >= Expected)
                {
                    Done.TrySetResult();
                }
            }
        }

        public IReadOnlyList<JsonElement> Snapshot()
        {
            lock (_responses)
            {
                return [.. _responses];
            }
        }
    }

    /// <summary>Client counts and acks of a cluster broadcast with acks.</summary>
    private sealed class AckCollector
    {
        private readonly List<AckResponse> _acks = [];
        private readonly SemaphoreSlim _changed = new(0);
        private int _counts;
        private int _clients;

        public int ClientCount => Volatile.Read(ref _clients);

        public void AddClientCount(int count)
        {
            lock (_acks)
            {
                _counts++;
                _clients += count;
            }

            _changed.Release();
        }

        public void AddAck(AckResponse ack)
        {
            lock (_acks)
            {
                _acks.Add(ack);
            }

            _changed.Release();
        }

        public IReadOnlyList<AckResponse> Responses()
        {
            lock (_acks)
            {
                return [.. _acks];
            }
        }

        /// <summary>True once <paramref name="servers"/> nodes gave their count and every counted client acked.</summary>
        public async Task<bool> WaitAsync(int servers, CancellationToken cancellationToken)
        {
            while (true)
            {
                lock (_acks)
                {
                    if (_counts >= servers && _acks.Count >= _clients)
                    {
                        return true;
                    }
                }

                try
                {
                    await _changed.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }
            }
        }
    }
}

/// <summary>The answers of the other nodes to a server-side emit with ack (the first argument each passed to its callback).</summary>
public sealed record ServerSideEmitResult(IReadOnlyList<JsonElement> Responses, int Expected, bool TimedOut);

/// <summary>A socket on another node, as fetched through the Redis adapter: operations go through the cluster.</summary>
internal sealed class RedisRemoteSocket(RedisAdapter adapter, string id, IReadOnlySet<string> rooms, IReadOnlyDictionary<string, object?> data, JsonElement auth)
    : RemoteSocket(id, rooms, data, auth)
{
    private BroadcastOptions Only => new() { Rooms = new HashSet<string>(StringComparer.Ordinal) { Id } };

    public override void Emit(string eventName, params object?[] args) => adapter.Broadcast(new BroadcastMessage(eventName, args), Only);

    public override void Join(params string[] rooms) => adapter.AddSockets(Only, rooms);

    public override void Leave(string room) => adapter.DelSockets(Only, [room]);

    public override void Disconnect(bool close = false) => adapter.DisconnectSockets(Only, close);
}
