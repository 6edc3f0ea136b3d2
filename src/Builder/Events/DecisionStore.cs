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

/// <summary>Where decisions live so that pending ones and their deadlines survive a restart.</summary>
public interface IDecisionStore
{
    ValueTask SaveAsync(StoredDecision decision, CancellationToken cancellationToken = default);

    ValueTask<StoredDecision?> LoadAsync(string decisionId, CancellationToken cancellationToken = default);

    ValueTask<IReadOnlyList<StoredDecision>> LoadPendingAsync(CancellationToken cancellationToken = default);
}

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

    public ValueTask<IReadOnlyList<StoredDecision>> LoadPendingAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<StoredDecision>>(_decisions.Values.Where(d => d.Resolution is null).ToList());
}
