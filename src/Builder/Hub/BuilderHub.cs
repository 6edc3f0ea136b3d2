using System.Text.Json;
using Builder.Auth;
using Builder.Contracts;
using Builder.Decisions;
using Builder.Events;
using Builder.Rooms;
using EngineIO;
using Microsoft.Extensions.Logging;
using SocketIO;

namespace Builder.Hub;

/// <summary>
/// The /builder namespace: handshake authentication, the client → server events of the
/// protocol document (authenticate, join-project, user:decision:response, pong) and what it adds
/// (leave-project, replay by lastSeq, snapshots), with the document's error event for every mistake.
/// </summary>
public sealed class BuilderHub
{
    public const string NamespaceName = "/builder";
    private const int ReplayPage = 500;
    private const int CatchUpRounds = 4;

    private readonly TokenValidator _tokens;
    private readonly ProjectAccess _access;
    private readonly IProjectRooms _rooms;
    private readonly DecisionService _decisions;
    private readonly IEventLog _log;
    private readonly SnapshotBuilder _snapshots;
    private readonly BuilderOptions _options;
    private readonly TimeProvider _time;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<BuilderHub> _logger;
    private readonly UserConnections _connections;
    // the event handlers every socket gets: created once and shared (a socket's state is read
    // from its Data), not a set of closures per connection
    private readonly (string Event, Func<SocketEventContext, ValueTask> Handler)[] _handlers;
    private readonly Func<SocketEventContext, ValueTask> _onPong;
    private readonly Func<SocketEventContext, ValueTask> _onUnknown;
    private readonly HeartbeatSlices _heartbeat;
    private long _beats = -1;

    public BuilderHub(SocketIONamespace nsp, TokenValidator tokens, ProjectAccess access, IProjectRooms rooms, DecisionService decisions, IEventLog log, SnapshotBuilder snapshots, BuilderOptions options, TimeProvider time, GatewayMetrics metrics, ILogger<BuilderHub> logger)
    {
        ArgumentNullException.ThrowIfNull(nsp);
        Namespace = nsp;
        _tokens = tokens;
        _access = access;
        _rooms = rooms;
        _decisions = decisions;
        _log = log;
        _snapshots = snapshots;
        _options = options;
        _heartbeat = new HeartbeatSlices(Math.Clamp(options.Heartbeat.IntervalSeconds * 4, 1, 120));
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _connections = new UserConnections(options.Limits.MaxConnectionsPerUser);
        _handlers =
        [
            ("authenticate", Guarded("authenticate", OnAuthenticateAsync)),
            ("join-project", Guarded("join-project", OnJoinProjectAsync)),
            ("leave-project", Guarded("leave-project", OnLeaveProjectAsync)),
            ("user:decision:response", Guarded("user:decision:response", OnDecisionResponseAsync)),
        ];
        _onPong = ctx =>
        {
            if (StateOf(ctx.Socket) is { } state)
            {
                OnPong(state);
            }

            return ValueTask.CompletedTask;
        };
        string[] known = [.. _handlers.Select(h => h.Event), "pong"];
        _onUnknown = ctx =>
        {
            _metrics.ClientError(ErrorCodes.UnknownEvent);
            Fail(ctx, ErrorCodes.UnknownEvent, $"Unknown event \"{ctx.EventName}\".", new { @event = ctx.EventName, known }, true);
            return ValueTask.CompletedTask;
        };
        nsp.Use(AuthenticateAsync);
        nsp.OnConnection(OnConnection);
    }

    private static BuilderConnection? StateOf(SocketIOSocket socket) =>
        socket.Data.GetValueOrDefault(BuilderConnection.DataKey) as BuilderConnection;

    public SocketIONamespace Namespace { get; }

    private async ValueTask AuthenticateAsync(SocketIOSocket socket, CancellationToken cancellationToken)
    {
        var result = await _tokens.ValidateAsync(socket.Handshake.AuthString("token"));
        if (!result.IsValid)
        {
            _metrics.AuthFailure(result.ErrorCode);
            throw new ConnectRejectedException("Authentication failed", new { code = result.ErrorCode, message = result.ErrorMessage });
        }

        var state = NewState(result.Identity!);

        // checked and counted in one step: connects racing each other cannot all pass the check
        if (!state.TryTakeSlot(_connections))
        {
            _metrics.ConnectionRefused();
            throw new ConnectRejectedException("Too many connections", new { code = ErrorCodes.ConnectionLimit, message = $"At most {_connections.Max} connections per user." });
        }

        // a connection refused after this (by a later middleware) or left by its client gives the slot back
        socket.OnConnectAborted(state.ReleaseSlot);
        socket.Data[BuilderConnection.DataKey] = state;
    }

    private BuilderConnection NewState(UserIdentity identity) =>
        new(identity, _options.Limits.ClientEventBurst, _time.GetTimestamp(), _options.Limits.JoinsPerMinute);

    private void OnConnection(SocketIOSocket socket)
    {
        if (StateOf(socket) is not { } state)
        {
            socket.Disconnect();
            return;
        }

        if (state.Attached)
        {
            // a recovered socket whose middleware did not run: the restored state (shared with the
            // old socket, whose disconnection gives its slot back) is copied, and a slot taken here
            state = NewState(state.Identity);
            socket.Data[BuilderConnection.DataKey] = state;
            if (!state.TryTakeSlot(_connections))
            {
                _metrics.ConnectionRefused();
                SendError(socket, ErrorCodes.ConnectionLimit, $"Too many connections: at most {_connections.Max} per user.", new { userId = state.Identity.UserId, limit = _connections.Max }, false, []);
                socket.Disconnect();
                return;
            }
        }

        state.Attached = true;
        _metrics.ConnectionAccepted();
        _heartbeat.Add(socket);
        socket.OnDisconnect(_ =>
        {
            _heartbeat.Remove(socket);
            state.ReleaseSlot();
            state.ExpiryTimer?.Dispose();
        });
        if (!socket.Conn.IsOpen)
        {
            // closed before its disconnect handler was in place
            _heartbeat.Remove(socket);
            state.ReleaseSlot();
        }

        using var scope = _logger.BeginScope(new Dictionary<string, object> { ["SocketId"] = socket.Id, ["UserId"] = state.Identity.UserId });
        if (state.Identity.ExpiresAt <= _time.GetUtcNow())
        {
            Expire(socket, state);
            return;
        }

        socket.Emit("authenticated", new { userId = state.Identity.UserId, username = state.Identity.Username });
        ScheduleExpiry(socket, state);

        foreach (var (eventName, handler) in _handlers)
        {
            socket.On(eventName, handler);
        }

        socket.On("pong", _onPong);
        socket.OnAny(_onUnknown);
    }

    /// <summary>One client event's handler with the limits every event passes first (rate, size) and its errors reported.</summary>
    private Func<SocketEventContext, ValueTask> Guarded(string eventName, Func<SocketEventContext, BuilderConnection, Task> handler)
    {
        return async ctx =>
        {
            if (StateOf(ctx.Socket) is not { } state)
            {
                return;
            }

            if (!state.TryTake(_options.Limits.ClientEventsPerSecond, _options.Limits.ClientEventBurst, _time.GetTimestamp(), _time.TimestampFrequency))
            {
                _metrics.ClientError(ErrorCodes.RateLimited);
                Fail(ctx, ErrorCodes.RateLimited, $"Too many events: at most {_options.Limits.ClientEventsPerSecond} per second.", new { limit = _options.Limits.ClientEventsPerSecond }, true);
                return;
            }

            var size = 0;
            for (var i = 0; i < ctx.Count; i++)
            {
                size += ctx[i].GetRawText().Length;
            }

            if (size > _options.Limits.MaxEventBytes)
            {
                _metrics.ClientError(ErrorCodes.PayloadTooLarge);
                Fail(ctx, ErrorCodes.PayloadTooLarge, $"The payload of \"{eventName}\" is larger than {_options.Limits.MaxEventBytes} bytes.", new { size, limit = _options.Limits.MaxEventBytes }, true);
                return;
            }

            try
            {
                await handler(ctx, state);
            }
            catch (StoreUnavailableException ex)
            {
                // Redis is away: the socket stays connected, the client tries again (its lastSeq loses nothing)
                _logger.LogWarning("Handling {Event} failed: {Reason}", eventName, ex.Message);
                Fail(ctx, ErrorCodes.Unavailable, "The event store is unavailable; try again shortly.", new { retryAfterSeconds = StoreUnavailableException.RetryAfterSeconds }, true);
            }
#pragma warning disable CA1031 // a failure is reported to the client, the socket stays up
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _logger.LogError(ex, "Handling {Event} failed", eventName);
                Fail(ctx, ErrorCodes.Internal, "The server could not handle the event.", new { }, true);
            }
        };
    }

    private async Task OnAuthenticateAsync(SocketEventContext ctx, BuilderConnection state)
    {
        if (!ctx.TryGetArg<JsonElement>(0, out var body) || body.ValueKind != JsonValueKind.Object)
        {
            Invalid(ctx, [new FieldError("token", "is required")]);
            return;
        }

        var token = body.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var result = await _tokens.ValidateAsync(token);
        if (!result.IsValid)
        {
            _metrics.AuthFailure(result.ErrorCode);
            Fail(ctx, result.ErrorCode!, "Authentication failed: " + result.ErrorMessage, new { }, true, [new ErrorAction("Sign in again", "reauthenticate")]);
            return;
        }

        var identity = result.Identity!;

        // the socket counts as the new token's user from now on: refused when that user is at the cap
        if (!state.TrySwitchIdentity(identity))
        {
            _metrics.ConnectionRefused();
            Fail(ctx, ErrorCodes.ConnectionLimit, $"Too many connections: at most {_connections.Max} per user.", new { userId = identity.UserId, limit = _connections.Max }, true);
            return;
        }

        // the new token may cover fewer projects (or be another user's): leave the others
        foreach (var room in ctx.Socket.Rooms.Where(r => r.StartsWith("project:", StringComparison.Ordinal)).ToList())
        {
            if (!await _access.MayAccessAsync(identity, room["project:".Length..]))
            {
                await _rooms.LeaveAsync(ctx.Socket, room["project:".Length..]);
            }
        }

        ScheduleExpiry(ctx.Socket, state);
        var data = new { userId = identity.UserId, username = identity.Username };
        ctx.Socket.Emit("authenticated", data);
        ctx.Ack(new { ok = true, identity.UserId, identity.Username });
    }

    private async Task OnJoinProjectAsync(SocketEventContext ctx, BuilderConnection state)
    {
        if (!TryReadProject(ctx, out var projectId, out var lastSeq))
        {
            return;
        }

        var joinsPerMinute = _options.Limits.JoinsPerMinute;
        if (!state.TryTakeJoin(joinsPerMinute / 60.0, joinsPerMinute, _time.GetTimestamp(), _time.TimestampFrequency))
        {
            _metrics.ClientError(ErrorCodes.RateLimited);
            Fail(ctx, ErrorCodes.RateLimited, $"Too many joins: at most {joinsPerMinute} per minute.", new { projectId, limit = joinsPerMinute }, true);
            return;
        }

        if (!await _access.MayAccessAsync(state.Identity, projectId))
        {
            _metrics.ClientError(ErrorCodes.Forbidden);
            Fail(ctx, ErrorCodes.Forbidden, $"You may not access project \"{projectId}\".", new { projectId }, true);
            return;
        }

        // what the client missed (the log after lastSeq, or a snapshot) is sent without holding
        // the project's publish gate, which producers wait for; only the switch to live events
        // (the events published meanwhile, then the room) happens under it
        var socket = ctx.Socket;
        var head = await _log.LatestSeqAsync(projectId);
        var earliest = await _log.EarliestSeqAsync(projectId);
        long cursor;
        long? from = null;
        if (lastSeq is { } last && last <= head && (earliest == 0 || last + 1 >= earliest))
        {
            from = last;
            cursor = await ReplayAsync(socket, projectId, last, head);
        }
        else
        {
            var snapshot = await _snapshots.BuildAsync(projectId);
            // a snapshot cut short by its read limit goes on live from the head, as before
            cursor = Math.Max(snapshot["seq"]!.GetValue<long>(), head);
            socket.Emit("project:snapshot", snapshot);
        }

        // catch up with the producers a few rounds without the gate, so what is left for the
        // switch is short
        for (var round = 0; round < CatchUpRounds; round++)
        {
            head = await _log.LatestSeqAsync(projectId);
            if (head - cursor <= ReplayPage)
            {
                break;
            }

            cursor = await ReplayAsync(socket, projectId, cursor, head);
        }

        var joined = await _rooms.SwitchToLiveAsync(projectId, async seq =>
        {
            await ReplayAsync(socket, projectId, cursor, seq);
            var members = await _rooms.JoinAsync(socket, projectId, state.Identity.UserId);
            var payload = new Dictionary<string, object?> { ["projectId"] = projectId, ["members"] = members, ["seq"] = seq };
            if (from is { } f)
            {
                payload["replayed"] = seq - f;
            }

            socket.Emit("project-joined", payload);
            return payload;
        });
        _metrics.Joined(replayed: from is not null);
        var ack = new Dictionary<string, object?>(joined) { ["ok"] = true };
        ctx.Ack(ack);
    }

    /// <summary>Sends the project's events after <paramref name="cursor"/> up to <paramref name="until"/>; returns the last seq sent.</summary>
    private async Task<long> ReplayAsync(SocketIOSocket socket, string projectId, long cursor, long until)
    {
        while (cursor < until)
        {
            var page = await _log.ReadAsync(projectId, cursor, ReplayPage);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var e in page)
            {
                if (e.Seq > until)
                {
                    return cursor;
                }

                socket.Emit(e.Type, e);
                cursor = e.Seq;
            }
        }

        return cursor;
    }

    private async Task OnLeaveProjectAsync(SocketEventContext ctx, BuilderConnection state)
    {
        if (TryReadProject(ctx, out var projectId, out _))
        {
            await _rooms.LeaveAsync(ctx.Socket, projectId);
            ctx.Ack(new { ok = true, projectId });
        }
    }

    private async Task OnDecisionResponseAsync(SocketEventContext ctx, BuilderConnection state)
    {
        var errors = new List<FieldError>();
        JsonElement body = default;
        if (!ctx.TryGetArg(0, out body) || body.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new FieldError("payload", "must be an object {decisionId, selectedOptionId, feedback?}"));
        }
        else
        {
            var check = new EventValidator.Checker(body, "payload", errors);
            check.String("decisionId");
            check.String("selectedOptionId");
            check.String("feedback", required: false);
        }

        if (errors.Count > 0)
        {
            Invalid(ctx, errors);
            return;
        }

        var decisionId = body.GetProperty("decisionId").GetString()!;
        var optionId = body.GetProperty("selectedOptionId").GetString()!;
        var feedback = body.TryGetProperty("feedback", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
        var identity = state.Identity;
        var answer = await _decisions.RespondAsync(identity.UserId, decisionId, optionId, feedback, projectId => _access.MayAccessAsync(identity, projectId));
        if (answer.Resolution is null)
        {
            _metrics.ClientError(answer.ErrorCode);
            Fail(ctx, answer.ErrorCode!, answer.ErrorMessage!, new { decisionId, selectedOptionId = optionId }, true);
            return;
        }

        ctx.Ack(new { ok = true, decisionId, selectedOptionId = optionId, resolvedBy = "user" });
    }

    private void OnPong(BuilderConnection state)
    {
        var sent = Interlocked.Exchange(ref state.PingSentAt, 0);
        Volatile.Write(ref state.MissedPongs, 0);
        if (sent != 0)
        {
            _metrics.ObserveHeartbeatRtt(_time.GetElapsedTime(sent));
        }
    }

    /// <summary>
    /// How often <see cref="Beat"/> runs. Each run serves one slice of the sockets (by a hash of the
    /// socket id; <see cref="HeartbeatSlices"/>), so every socket is pinged once per
    /// <c>Heartbeat:IntervalSeconds</c> and the pings of many sockets are spread over the interval:
    /// pinging 10 000 sockets in one go (and reading their 10 000 pongs) held a core for hundreds of
    /// milliseconds, every event published meanwhile waiting behind it. One run every 250 ms, at
    /// most 120 runs per interval.
    /// </summary>
    public TimeSpan BeatPeriod => TimeSpan.FromSeconds(_options.Heartbeat.IntervalSeconds) / _heartbeat.Count;

    /// <summary>
    /// One heartbeat run (every <see cref="BeatPeriod"/>): the sockets of the next slice that missed
    /// too many pongs are disconnected, the others pinged.
    /// </summary>
    public void Beat()
    {
        var slice = (int)((ulong)Interlocked.Increment(ref _beats) % (ulong)_heartbeat.Count);
        var sockets = _heartbeat.Rent(slice, out var count);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var socket = sockets[i];
                if (StateOf(socket) is not { } state)
                {
                    continue;
                }

                if (Volatile.Read(ref state.MissedPongs) >= _options.Heartbeat.MaxMissed)
                {
                    _metrics.HeartbeatDisconnect();
                    SendError(socket, ErrorCodes.HeartbeatTimeout, $"No pong for {_options.Heartbeat.MaxMissed} pings: disconnecting.", new { missed = state.MissedPongs }, false, []);
                    socket.Disconnect();
                    continue;
                }

                Interlocked.Increment(ref state.MissedPongs);
                Interlocked.CompareExchange(ref state.PingSentAt, _time.GetTimestamp(), 0);
                socket.Volatile.Emit("ping", (object?)null);
            }
        }
        finally
        {
            HeartbeatSlices.Return(sockets);
        }
    }

    private void ScheduleExpiry(SocketIOSocket socket, BuilderConnection state)
    {
        state.ExpiryTimer?.Dispose();
        var identity = state.Identity;
        var due = identity.ExpiresAt - _time.GetUtcNow();
        state.ExpiryTimer = _time.CreateDetachedTimer(_ =>
        {
            if (ReferenceEquals(state.Identity, identity) && socket.Connected)
            {
                Expire(socket, state);
            }
        }, null, due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
    }

    private void Expire(SocketIOSocket socket, BuilderConnection state)
    {
        _metrics.AuthFailure(TokenErrors.Expired);
        SendError(socket, TokenErrors.Expired, "The token has expired; reconnect with a fresh token.", new { userId = state.Identity.UserId }, false, [new ErrorAction("Sign in again", "reauthenticate")]);
        socket.Disconnect();
    }

    private bool TryReadProject(SocketEventContext ctx, out string projectId, out long? lastSeq)
    {
        projectId = string.Empty;
        lastSeq = null;
        var errors = new List<FieldError>();
        if (!ctx.TryGetArg<JsonElement>(0, out var body) || body.ValueKind != JsonValueKind.Object)
        {
            errors.Add(new FieldError("payload", "must be an object {projectId, lastSeq?}"));
        }
        else
        {
            if (!body.TryGetProperty("projectId", out var p) || p.ValueKind != JsonValueKind.String || !ProjectIds.IsValid(p.GetString()))
            {
                errors.Add(new FieldError("payload.projectId", ProjectIds.Rule));
            }
            else
            {
                projectId = p.GetString()!;
            }

            if (body.TryGetProperty("lastSeq", out var s) && s.ValueKind != JsonValueKind.Null)
            {
                if (s.ValueKind == JsonValueKind.Number && s.TryGetInt64(out var value) && value >= 0)
                {
                    lastSeq = value;
                }
                else
                {
                    errors.Add(new FieldError("payload.lastSeq", "must be a non-negative integer"));
                }
            }
        }

        if (errors.Count > 0)
        {
            Invalid(ctx, errors);
            return false;
        }

        return true;
    }

    private void Invalid(SocketEventContext ctx, IReadOnlyList<FieldError> errors)
    {
        _metrics.ClientError(ErrorCodes.InvalidPayload);
        Fail(ctx, ErrorCodes.InvalidPayload, $"Invalid payload for \"{ctx.EventName}\": " + string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")), new { @event = ctx.EventName, fields = errors.Select(e => new { field = e.Field, message = e.Message }) }, true);
    }

    private void Fail(SocketEventContext ctx, string code, string message, object details, bool recoverable, IReadOnlyList<ErrorAction>? actions = null)
    {
        SendError(ctx.Socket, code, message, details, recoverable, actions ?? []);
        ctx.Ack(new { ok = false, error = new { code, message, details } });
    }

    private void SendError(SocketIOSocket socket, string code, string message, object details, bool recoverable, IReadOnlyList<ErrorAction> actions) =>
        socket.Emit("error", new ErrorEnvelope("error", _time.GetUtcNow().ToUnixTimeMilliseconds(), new ErrorPayload(code, message, details, recoverable, actions)));
}
