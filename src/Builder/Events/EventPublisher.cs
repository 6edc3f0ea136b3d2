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

    private async Task<PublishResult> PublishCoreAsync(string projectId, string type, JsonElement payload, bool validate, CancellationToken cancellationToken)
    {
        var errors = new List<FieldError>();
        if (!ProjectIds.IsValid(projectId))
        {
            errors.Add(new FieldError("projectId", ProjectIds.Rule));
        }

        if (validate)
        {
            errors.AddRange(EventValidator.Validate(type, payload));
        }

        if (errors.Count == 0 && payload.ValueKind == JsonValueKind.Object && payload.TryGetProperty("projectId", out var pid)
            && (pid.ValueKind != JsonValueKind.String || pid.GetString() != projectId))
        {
            errors.Add(new FieldError("payload.projectId", $"must be \"{projectId}\" (the project of the route) when present"));
        }

        if (errors.Count == 0 && payload.GetRawText().Length > _maxEventBytes)
        {
            errors.Add(new FieldError("payload", $"is larger than {_maxEventBytes} bytes"));
        }

        if (errors.Count > 0)
        {
            return new PublishResult(null, errors);
        }

        if (s_projectScoped.Contains(type) && !payload.TryGetProperty("projectId", out _))
        {
            var node = JsonNode.Parse(payload.GetRawText())!.AsObject();
            node.Insert(0, "projectId", projectId);
            payload = JsonSerializer.SerializeToElement(node, StoreJson.Options);
        }

        // the span of the publication (child of the producer's request span when there is one)
        using var activity = GatewayActivities.Source.StartActivity(GatewayActivities.Publish);
        activity?.SetTag("builder.project_id", projectId).SetTag("builder.event.type", type);
        var envelope = await _gates.RunAsync(projectId, async () =>
        {
            EventEnvelope appended;
            using (GatewayActivities.Source.StartActivity(GatewayActivities.LogAppend))
            {
                appended = await _log.AppendAsync(projectId, type, payload, _time.GetUtcNow().ToUnixTimeMilliseconds(), cancellationToken);
            }

            using (GatewayActivities.Source.StartActivity(GatewayActivities.Broadcast))
            {
                _rooms.Deliver(appended);
            }

            return appended;
        }, cancellationToken);
        activity?.SetTag("builder.event.seq", envelope.Seq);

        try
        {
            Published?.Invoke(envelope);
        }
#pragma warning disable CA1031 // an observer's failure must not fail the publication
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "An observer of published events failed");
        }

        return new PublishResult(envelope, []);
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
