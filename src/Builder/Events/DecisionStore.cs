using System.Collections.Concurrent;
using System.Text.Json.Serialization;

namespace Builder.Events;

public sealed record DecisionOption(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("description")] string? Description = null,
    [property: JsonPropertyName("preview")] string? Preview = null);

/// <summary>
/// How a decision ended: chosen by a user ("user"), defaulted at its timeout ("timeout"), or
/// withdrawn because the build that asked it ended ("cancelled", no option selected).
/// </summary>
public sealed record DecisionResolution(string DecisionId, string? SelectedOptionId, string ResolvedBy, string? UserId, string? Feedback, DateTimeOffset ResolvedAt);

/// <summary>A decision as persisted: what was asked, its deadline, and its resolution once there is one.</summary>
public sealed record StoredDecision(
    string DecisionId,
    string ProjectId,
    string? AgentId,
    string Question,
    IReadOnlyList<DecisionOption> Options,
    int TimeoutSeconds,
    string DefaultOptionId,
    DateTimeOffset CreatedAt,
    DateTimeOffset Deadline,
    DecisionResolution? Resolution);

/// <summary>
/// Where decisions live so that pending ones and their deadlines survive a restart, and where the
/// one resolution of a decision is decided: the first <see cref="TryResolveAsync"/> wins. The
/// local stores (memory, SQLite) serve one process; <see cref="RedisDecisionStore"/> serves every
/// node of a cluster, which it tells of the resolutions made elsewhere.
/// </summary>
public interface IDecisionStore
{
    /// <summary>Saves a new (pending) decision.</summary>
    ValueTask SaveAsync(StoredDecision decision, CancellationToken cancellationToken = default);

    ValueTask<StoredDecision?> LoadAsync(string decisionId, CancellationToken cancellationToken = default);

    /// <summary>The pending decisions, all of them or those of one project.</summary>
    ValueTask<IReadOnlyList<StoredDecision>> LoadPendingAsync(string? projectId = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records the resolution unless the decision already has one (atomically: of concurrent
    /// calls, anywhere, exactly one returns true); false too when the decision does not exist.
    /// </summary>
    ValueTask<bool> TryResolveAsync(string decisionId, DecisionResolution resolution, CancellationToken cancellationToken = default);

    /// <summary>The pending decisions whose deadline is at or before <paramref name="now"/>.</summary>
    async ValueTask<IReadOnlyList<StoredDecision>> LoadDueAsync(DateTimeOffset now, CancellationToken cancellationToken = default) =>
        (await LoadPendingAsync(null, cancellationToken)).Where(d => d.Deadline <= now).ToList();

    /// <summary>True when other processes share the store (their deadlines and resolutions reach this one through it).</summary>
    bool Shared => false;

    /// <summary>Raised with (projectId, resolution) for resolutions made by another process (never by the local stores).</summary>
    event Action<string, DecisionResolution>? ResolvedElsewhere
    {
        add { }
        remove { }
    }
}

/// <summary>Decisions in memory (Store:Provider memory): one process, nothing survives a restart.</summary>
public sealed class InMemoryDecisionStore : IDecisionStore
{
    private readonly ConcurrentDictionary<string, StoredDecision> _decisions = new(StringComparer.Ordinal);

    public ValueTask SaveAsync(StoredDecision decision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decision);
        _decisions[decision.DecisionId] = decision;
        return ValueTask.CompletedTask;
    }

    public ValueTask<StoredDecision?> LoadAsync(string decisionId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(_decisions.TryGetValue(decisionId, out var d) ? d : null);

    public ValueTask<IReadOnlyList<StoredDecision>> LoadPendingAsync(string? projectId = null, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<StoredDecision>>(_decisions.Values.Where(d => d.Resolution is null && (projectId is null || d.ProjectId == projectId)).ToList());

    public ValueTask<bool> TryResolveAsync(string decisionId, DecisionResolution resolution, CancellationToken cancellationToken = default)
    {
        while (_decisions.TryGetValue(decisionId, out var current))
        {
            if (current.Resolution is not null)
            {
                return ValueTask.FromResult(false);
            }

            if (_decisions.TryUpdate(decisionId, current with { Resolution = resolution }, current))
            {
                return ValueTask.FromResult(true);
            }
        }

        return ValueTask.FromResult(false);
    }
}
