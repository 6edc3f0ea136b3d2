using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Builder.Events;

/// <summary>
/// The envelope of every project event: the document's <c>{type, timestamp, payload}</c> plus
/// <c>projectId</c>, <c>seq</c> (per project, strictly increasing from 1) and <c>eventId</c>.
/// </summary>
public sealed record EventEnvelope(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("timestamp")] long Timestamp,
    [property: JsonPropertyName("payload")] JsonElement Payload,
    [property: JsonPropertyName("projectId")] string ProjectId,
    [property: JsonPropertyName("seq")] long Seq,
    [property: JsonPropertyName("eventId")] string EventId);

/// <summary>An event to append to a project's log: its type, payload and timestamp (epoch ms).</summary>
public readonly record struct NewEvent(string Type, JsonElement Payload, long Timestamp);

/// <summary>The ordered, per-project event log: the single source of truth for replay and snapshots.</summary>
public interface IEventLog : IAsyncDisposable
{
    /// <summary>Appends an event; the caller serializes appends per project (the publisher does).</summary>
    ValueTask<EventEnvelope> AppendAsync(string projectId, string type, JsonElement payload, long timestamp, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends the events of one project, in order, all or none: they get consecutive seqs. The
    /// caller serializes appends per project (the publisher does). Stores that can write several
    /// events at once (SQLite: one transaction; Redis: one script) override this.
    /// </summary>
    async ValueTask<IReadOnlyList<EventEnvelope>> AppendBatchAsync(string projectId, IReadOnlyList<NewEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        var result = new EventEnvelope[events.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = await AppendAsync(projectId, events[i].Type, events[i].Payload, events[i].Timestamp, cancellationToken);
        }

        return result;
    }

    /// <summary>Events with seq &gt; <paramref name="afterSeq"/>, in order, at most <paramref name="limit"/>.</summary>
    ValueTask<IReadOnlyList<EventEnvelope>> ReadAsync(string projectId, long afterSeq, int limit, CancellationToken cancellationToken = default);

    /// <summary>The last seq of the project (0 when it has no event).</summary>
    ValueTask<long> LatestSeqAsync(string projectId, CancellationToken cancellationToken = default);

    /// <summary>The first seq still kept (1 unless older events were trimmed; 0 when empty).</summary>
    ValueTask<long> EarliestSeqAsync(string projectId, CancellationToken cancellationToken = default);
}

/// <summary>An in-memory log (tests, Store:Provider = memory). Keeps at most <c>maxPerProject</c> events per project.</summary>
public sealed class InMemoryEventLog(int maxPerProject = 100_000) : IEventLog
{
    private readonly ConcurrentDictionary<string, ProjectEvents> _projects = new(StringComparer.Ordinal);

    public ValueTask<EventEnvelope> AppendAsync(string projectId, string type, JsonElement payload, long timestamp, CancellationToken cancellationToken = default)
    {
        var project = _projects.GetOrAdd(projectId, static _ => new ProjectEvents());
        lock (project)
        {
            var envelope = new EventEnvelope(type, timestamp, payload.Clone(), projectId, ++project.LastSeq, Guid.NewGuid().ToString());
            project.Events.Add(envelope);
            if (project.Events.Count > maxPerProject)
            {
                project.Events.RemoveRange(0, project.Events.Count - maxPerProject);
            }

            return ValueTask.FromResult(envelope);
        }
    }

    public ValueTask<IReadOnlyList<EventEnvelope>> AppendBatchAsync(string projectId, IReadOnlyList<NewEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        var project = _projects.GetOrAdd(projectId, static _ => new ProjectEvents());
        var result = new EventEnvelope[events.Count];
        lock (project)
        {
            for (var i = 0; i < result.Length; i++)
            {
                var e = events[i];
                result[i] = new EventEnvelope(e.Type, e.Timestamp, e.Payload.Clone(), projectId, ++project.LastSeq, Guid.NewGuid().ToString());
            }

            project.Events.AddRange(result);
            if (project.Events.Count > maxPerProject)
            {
                project.Events.RemoveRange(0, project.Events.Count - maxPerProject);
            }
        }

        return ValueTask.FromResult<IReadOnlyList<EventEnvelope>>(result);
    }

    public ValueTask<IReadOnlyList<EventEnvelope>> ReadAsync(string projectId, long afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        if (!_projects.TryGetValue(projectId, out var project))
        {
            return ValueTask.FromResult<IReadOnlyList<EventEnvelope>>([]);
        }

        lock (project)
        {
            var result = new List<EventEnvelope>();
            foreach (var e in project.Events)
            {
                if (e.Seq > afterSeq)
                {
                    result.Add(e);
                    if (result.Count >= limit)
                    {
                        break;
                    }
                }
            }

            return ValueTask.FromResult<IReadOnlyList<EventEnvelope>>(result);
        }
    }

    public ValueTask<long> LatestSeqAsync(string projectId, CancellationToken cancellationToken = default)
    {
        if (!_projects.TryGetValue(projectId, out var project))
        {
            return ValueTask.FromResult(0L);
        }

        lock (project)
        {
            return ValueTask.FromResult(project.LastSeq);
        }
    }

    public ValueTask<long> EarliestSeqAsync(string projectId, CancellationToken cancellationToken = default)
    {
        if (!_projects.TryGetValue(projectId, out var project))
        {
            return ValueTask.FromResult(0L);
        }

        lock (project)
        {
            return ValueTask.FromResult(project.Events.Count == 0 ? 0 : project.Events[0].Seq);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class ProjectEvents
    {
        public List<EventEnvelope> Events { get; } = [];

        public long LastSeq { get; set; }
    }
}
