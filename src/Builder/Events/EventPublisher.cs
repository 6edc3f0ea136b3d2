using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Builder.Contracts;
using Builder.Rooms;
using Builder.Telemetry;
using Microsoft.Extensions.Logging;

namespace Builder.Events;

/// <summary>The outcome of a publication: the stamped envelope, or the invalid fields.</summary>
public sealed record PublishResult(EventEnvelope? Envelope, IReadOnlyList<FieldError> Errors)
{
    public bool Ok => Envelope is not null;
}

/// <summary>An event a producer publishes: its type and payload (the log stamps the rest).</summary>
public readonly record struct EventDraft(string Type, JsonElement Payload);

/// <summary>An invalid field of a batch: the index of its event (null for the batch's own fields, e.g. projectId), the field, why.</summary>
public sealed record IndexedFieldError(int? Index, string Field, string Message);

/// <summary>The outcome of a batch publication: every envelope in order, or every error (and nothing published).</summary>
public sealed record BatchPublishResult(IReadOnlyList<EventEnvelope>? Envelopes, IReadOnlyList<IndexedFieldError> Errors)
{
    public bool Ok => Envelopes is not null;
}

/// <summary>
/// The one path every producer's event takes: validate → append to the project's log (seq,
/// eventId, timestamp) → delivery to room <c>project:{id}</c> through <see cref="IProjectRooms"/>. Appends and broadcasts of a
/// project are serialized, so clients see events in seq order, and a joining client can be
/// replayed the log and switched to live events without a gap or a duplicate.
/// </summary>
public sealed class EventPublisher
{
    private static readonly HashSet<string> s_projectScoped =
    [
        EventTypes.BuildStarted, EventTypes.BuildProgress, EventTypes.BuildCompleted, EventTypes.BuildFailed,
        EventTypes.BuildCancelled, EventTypes.DecisionRequired, EventTypes.DeploymentFailed,
    ];

    private readonly ProjectGates _gates;
    private readonly IEventLog _log;
    private readonly IProjectRooms _rooms;
    private readonly TimeProvider _time;
    private readonly int _maxEventBytes;
    private readonly ILogger<EventPublisher> _logger;

    public EventPublisher(IEventLog log, IProjectRooms rooms, ProjectGates gates, TimeProvider time, int maxEventBytes, ILogger<EventPublisher> logger)
    {
        _log = log;
        _rooms = rooms;
        _gates = gates;
        _time = time;
        _maxEventBytes = maxEventBytes;
        _logger = logger;
    }

    /// <summary>Per-project gates held now (tests).</summary>
    internal int GateCount => _gates.Count;

    /// <summary>Raised after an event is logged and broadcast (metrics, projections).</summary>
    public event Action<EventEnvelope>? Published;

    public static string Room(string projectId) => "project:" + projectId;

    /// <summary>Validates and publishes a producer's event.</summary>
    public Task<PublishResult> PublishAsync(string projectId, string type, JsonElement payload, CancellationToken cancellationToken = default) =>
        PublishCoreAsync(projectId, type, payload, validate: true, cancellationToken);

    /// <summary>Publishes a typed payload (serialized with the web defaults).</summary>
    public Task<PublishResult> PublishAsync<T>(string projectId, string type, T payload, CancellationToken cancellationToken = default) =>
        PublishAsync(projectId, type, JsonSerializer.SerializeToElement(payload, StoreJson.Options), cancellationToken);

    /// <summary>Publishes an event produced by the gateway itself (decisions), already known valid.</summary>
    internal Task<PublishResult> PublishTrustedAsync(string projectId, string type, JsonElement payload, CancellationToken cancellationToken = default) =>
        PublishCoreAsync(projectId, type, payload, validate: false, cancellationToken);

    /// <summary>
    /// Validates and publishes a producer's events to one project, all or none: when one is
    /// invalid nothing is published and every error is named with its event's index; otherwise
    /// the events take consecutive seqs, in the given order, and are delivered in that order.
    /// </summary>
    public Task<BatchPublishResult> PublishBatchAsync(string projectId, IReadOnlyList<EventDraft> events, CancellationToken cancellationToken = default) =>
        PublishBatchCoreAsync(projectId, events, validate: true, cancellationToken);

    private async Task<PublishResult> PublishCoreAsync(string projectId, string type, JsonElement payload, bool validate, CancellationToken cancellationToken)
    {
        var result = await PublishBatchCoreAsync(projectId, [new EventDraft(type, payload)], validate, cancellationToken);
        return result.Ok
            ? new PublishResult(result.Envelopes![0], [])
            : new PublishResult(null, result.Errors.Select(e => new FieldError(e.Field, e.Message)).ToList());
    }

    private async Task<BatchPublishResult> PublishBatchCoreAsync(string projectId, IReadOnlyList<EventDraft> events, bool validate, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        var errors = new List<IndexedFieldError>();
        if (!ProjectIds.IsValid(projectId))
        {
            errors.Add(new IndexedFieldError(null, "projectId", ProjectIds.Rule));
        }

        var drafts = new EventDraft[events.Count];
        for (var i = 0; i < drafts.Length; i++)
        {
            var (type, payload) = events[i];
            var before = errors.Count;
            if (validate)
            {
                foreach (var error in EventValidator.Validate(type, payload))
                {
                    errors.Add(new IndexedFieldError(i, error.Field, error.Message));
                }
            }

            if (errors.Count == before && payload.ValueKind == JsonValueKind.Object && payload.TryGetProperty("projectId", out var pid)
                && (pid.ValueKind != JsonValueKind.String || pid.GetString() != projectId))
            {
                errors.Add(new IndexedFieldError(i, "payload.projectId", $"must be \"{projectId}\" (the project of the route) when present"));
            }

            if (errors.Count == before && System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(payload).Length > _maxEventBytes)
            {
                errors.Add(new IndexedFieldError(i, "payload", $"is larger than {_maxEventBytes} bytes"));
            }

            if (errors.Count == before && s_projectScoped.Contains(type) && !payload.TryGetProperty("projectId", out _))
            {
                var node = JsonNode.Parse(payload.GetRawText())!.AsObject();
                node.Insert(0, "projectId", projectId);
                payload = JsonSerializer.SerializeToElement(node, StoreJson.Options);
            }

            drafts[i] = new EventDraft(type, payload);
        }

        if (errors.Count > 0)
        {
            return new BatchPublishResult(null, errors);
        }

        if (drafts.Length == 0)
        {
            return new BatchPublishResult([], []);
        }

        cancellationToken.ThrowIfCancellationRequested();

        // the span of the publication (child of the producer's request span when there is one)
        using var activity = GatewayActivities.Source.StartActivity(GatewayActivities.Publish);
        activity?.SetTag("builder.project_id", projectId).SetTag("builder.event.type", drafts[0].Type).SetTag("builder.event.count", drafts.Length);

        // concurrent publications of the project are combined: one append (one commit) and the
        // deliveries of everything queued, in seq order, under the project's gate
        IReadOnlyList<EventEnvelope> envelopes;
        try
        {
            envelopes = await _gates.CombineAsync<EventDraft[], IReadOnlyList<EventEnvelope>>(projectId, drafts, drafts.Length, MaxEventsPerAppend, batch => AppendAndDeliverAsync(projectId, batch));
        }
        catch (Exception ex) when (activity is not null)
        {
            // the publication failed (the log refused or could not be reached): the span says so
            activity.SetStatus(ActivityStatusCode.Error, ex.Message);
            activity.SetTag("exception.type", ex.GetType().FullName);
            throw;
        }

        activity?.SetTag("builder.event.seq", envelopes[^1].Seq);
        var published = Published;
        if (published is not null)
        {
            foreach (var envelope in envelopes)
            {
                try
                {
                    published(envelope);
                }
#pragma warning disable CA1031 // an observer's failure must not fail the publication
                catch (Exception ex)
#pragma warning restore CA1031
                {
                    _logger.LogError(ex, "An observer of published events failed");
                }
            }
        }

        return new BatchPublishResult(envelopes, []);
    }

    /// <summary>Most events one append of a project writes (the combined publications of its producers).</summary>
    private const int MaxEventsPerAppend = 1000;

    /// <summary>Holding the project's gate: appends the publications' events at once, then delivers them in seq order.</summary>
    private async Task<IReadOnlyList<IReadOnlyList<EventEnvelope>>> AppendAndDeliverAsync(string projectId, IReadOnlyList<EventDraft[]> publications)
    {
        var timestamp = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var count = 0;
        foreach (var p in publications)
        {
            count += p.Length;
        }

        var events = new NewEvent[count];
        var n = 0;
        foreach (var p in publications)
        {
            foreach (var d in p)
            {
                events[n++] = new NewEvent(d.Type, d.Payload, timestamp);
            }
        }

        // once queued, the events are appended whatever becomes of the producers' requests
        // (the spans belong to the publication whose call does the combined append)
        IReadOnlyList<EventEnvelope> appended;
        using (GatewayActivities.Source.StartActivity(GatewayActivities.LogAppend))
        {
            appended = await _log.AppendBatchAsync(projectId, events, CancellationToken.None);
        }

        var result = new IReadOnlyList<EventEnvelope>[publications.Count];
        n = 0;
        using (GatewayActivities.Source.StartActivity(GatewayActivities.Broadcast))
        {
            for (var i = 0; i < result.Length; i++)
            {
                var own = new EventEnvelope[publications[i].Length];
                for (var j = 0; j < own.Length; j++)
                {
                    own[j] = appended[n++];
                    _rooms.Deliver(own[j]);
                }

                result[i] = own;
            }
        }

        return result;
    }

    /// <summary>
    /// Runs <paramref name="action"/> while no event of the project can be published on this node.
    /// Keep it short: the project's producers wait for it.
    /// </summary>
    public Task<T> RunExclusiveAsync<T>(string projectId, Func<Task<T>> action, CancellationToken cancellationToken = default) =>
        _gates.RunAsync(projectId, action, cancellationToken);
}

/// <summary>What a project id may look like.</summary>
public static class ProjectIds
{
    public const string Rule = "must be 1-128 characters of letters, digits, '-', '_', '.' or ':'";

    public static bool IsValid(string? projectId)
    {
        if (string.IsNullOrEmpty(projectId) || projectId.Length > 128)
        {
            return false;
        }

        foreach (var c in projectId)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
            {
                return false;
            }
        }

        return true;
    }
}
