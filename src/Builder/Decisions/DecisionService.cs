using System.Collections.Concurrent;
using System.Text.Json;
using Builder.Contracts;
using Builder.Events;
using EngineIO;
using Microsoft.Extensions.Logging;

namespace Builder.Decisions;

/// <summary>What a producer asks the user.</summary>
public sealed record DecisionRequest(string? AgentId, string Question, IReadOnlyList<DecisionOption> Options, int TimeoutSeconds, string? DefaultOptionId = null);

/// <summary>Why an answer was refused (each code also goes out as an error event).</summary>
public static class DecisionErrors
{
    public const string NotFound = "DECISION_NOT_FOUND";
    public const string AlreadyResolved = "DECISION_ALREADY_RESOLVED";
    public const string InvalidOption = "DECISION_INVALID_OPTION";
    public const string Forbidden = "FORBIDDEN";
}

public sealed record DecisionAnswer(DecisionResolution? Resolution, string? ErrorCode, string? ErrorMessage);

/// <summary>
/// Decisions: created by producers, broadcast as <c>user:decision:required</c>, answered once
/// (the first valid answer wins) or defaulted at their deadline, resolved as
/// <c>user:decision:resolved</c>. Pending decisions and deadlines are persisted and rescheduled
/// at start-up. Which answer was first is the store's to say (<see cref="IDecisionStore.TryResolveAsync"/>),
/// so with the Redis store several nodes serve the same decisions: any of them takes an answer,
/// applies a default at the deadline (one wins) or answers a long-poll.
/// </summary>
public sealed class DecisionService : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Entry> _pending = new(StringComparer.Ordinal);
    private readonly IDecisionStore _store;
    private readonly EventPublisher _publisher;
    private readonly TimeProvider _time;
    private readonly ILogger<DecisionService> _logger;
    private ITimer? _sweep;

    /// <summary>How often a node with a shared store looks for decisions past their deadline.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(1);

    public DecisionService(IDecisionStore store, EventPublisher publisher, TimeProvider time, ILogger<DecisionService> logger)
    {
        _store = store;
        _publisher = publisher;
        _time = time;
        _logger = logger;
    }

    /// <summary>Raised once per resolution (Redis forwarding, metrics).</summary>
    public event Action<string, DecisionResolution>? Resolved;

    public static IReadOnlyList<FieldError> Validate(DecisionRequest? request)
    {
        var errors = new List<FieldError>();
        if (request is null)
        {
            errors.Add(new FieldError("body", "must be a JSON object"));
            return errors;
        }

        if (string.IsNullOrWhiteSpace(request.Question))
        {
            errors.Add(new FieldError("question", "is required"));
        }

        if (request.Options is null || request.Options.Count == 0)
        {
            errors.Add(new FieldError("options", "must list at least one option"));
        }
        else
        {
            for (var i = 0; i < request.Options.Count; i++)
            {
                var option = request.Options[i];
                if (option is null || string.IsNullOrWhiteSpace(option.Id))
                {
                    errors.Add(new FieldError($"options[{i}].id", "is required"));
                }

                if (option is null || string.IsNullOrWhiteSpace(option.Label))
                {
                    errors.Add(new FieldError($"options[{i}].label", "is required"));
                }
            }

            if (request.Options.Where(o => o?.Id is not null).GroupBy(o => o.Id).Any(g => g.Count() > 1))
            {
                errors.Add(new FieldError("options", "ids must be unique"));
            }

            if (request.DefaultOptionId is not null && request.Options.All(o => o?.Id != request.DefaultOptionId))
            {
                errors.Add(new FieldError("defaultOptionId", "must be the id of one of the options"));
            }
        }

        if (request.TimeoutSeconds is < 1 or > 86_400)
        {
            errors.Add(new FieldError("timeout", "must be between 1 and 86400 seconds"));
        }

        return errors;
    }

    /// <summary>Creates a decision and broadcasts it to the project's room.</summary>
    public async Task<StoredDecision> CreateAsync(string projectId, DecisionRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = Validate(request);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")), nameof(request));
        }

        var now = _time.GetUtcNow();
        var decision = new StoredDecision(
            "decision-" + Guid.NewGuid().ToString("N"),
            projectId,
            request.AgentId,
            request.Question,
            request.Options,
            request.TimeoutSeconds,
            request.DefaultOptionId ?? request.Options[0].Id,
            now,
            now.AddSeconds(request.TimeoutSeconds),
            null);
        await _store.SaveAsync(decision, cancellationToken);
        Track(decision);
        var payload = new DecisionRequiredPayload(projectId, request.AgentId, decision.DecisionId, request.Question, request.Options, request.TimeoutSeconds, decision.DefaultOptionId, decision.Deadline.ToUnixTimeMilliseconds());
        await _publisher.PublishTrustedAsync(projectId, EventTypes.DecisionRequired, JsonSerializer.SerializeToElement(payload, StoreJson.Options), cancellationToken);
        return decision;
    }

    /// <summary>
    /// Reschedules the pending decisions found in the store (after a restart). With a shared
    /// store, also starts the sweep that applies the defaults of decisions asked on other nodes.
    /// </summary>
    public async Task RestoreAsync(CancellationToken cancellationToken = default)
    {
        foreach (var decision in await _store.LoadPendingAsync(null, cancellationToken))
        {
            Track(decision);
        }

        if (_store.Shared && _sweep is null)
        {
            _store.ResolvedElsewhere += OnResolvedElsewhere;
            _sweep = _time.CreateTimer(static s => _ = ((DecisionService)s!).SweepAsync(), this, SweepInterval, SweepInterval);
        }
    }

    /// <summary>Pending decisions of a project (for snapshots): of the whole cluster when the store is shared.</summary>
    public async ValueTask<IReadOnlyList<StoredDecision>> PendingAsync(string projectId, CancellationToken cancellationToken = default) =>
        _store.Shared
            ? await _store.LoadPendingAsync(projectId, cancellationToken)
            : _pending.Values.Where(e => e.Decision.ProjectId == projectId && !e.Completion.Task.IsCompleted).Select(e => e.Decision).ToList();

    public ValueTask<StoredDecision?> GetAsync(string decisionId, CancellationToken cancellationToken = default) =>
        _pending.TryGetValue(decisionId, out var entry) && !_store.Shared ? ValueTask.FromResult<StoredDecision?>(entry.Decision) : _store.LoadAsync(decisionId, cancellationToken);

    /// <summary>
    /// The one answer for an unknown decision id and for a decision the caller may not see (the
    /// gateway's HTTP API uses it too): both look the same, so ids cannot be probed.
    /// </summary>
    public static DecisionAnswer NotFound(string decisionId) => new(null, DecisionErrors.NotFound, $"Decision \"{decisionId}\" does not exist.");

    /// <summary>
    /// A user's answer. <paramref name="mayAccess"/> checks the user against the decision's
    /// project. The decision may have been asked on another node: the store decides which answer
    /// was first.
    /// </summary>
    public async Task<DecisionAnswer> RespondAsync(string userId, string decisionId, string selectedOptionId, string? feedback, Func<string, Task<bool>> mayAccess, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(mayAccess);
        var decision = _pending.TryGetValue(decisionId, out var entry) ? entry.Decision : await _store.LoadAsync(decisionId, cancellationToken);
        if (decision is null)
        {
            return NotFound(decisionId);
        }

        if (!await mayAccess(decision.ProjectId))
        {
            // answered like an unknown id: an outsider must not learn which decision ids exist
            return NotFound(decisionId);
        }

        if (decision.Resolution is not null)
        {
            return new DecisionAnswer(null, DecisionErrors.AlreadyResolved, $"Decision \"{decisionId}\" was already resolved.");
        }

        if (decision.Options.All(o => o.Id != selectedOptionId))
        {
            return new DecisionAnswer(null, DecisionErrors.InvalidOption, $"\"{selectedOptionId}\" is not an option of this decision; expected one of {string.Join(", ", decision.Options.Select(o => o.Id))}.");
        }

        var resolution = await ResolveAsync(decision, selectedOptionId, "user", userId, feedback);
        return resolution is null
            ? new DecisionAnswer(null, DecisionErrors.AlreadyResolved, $"Decision \"{decisionId}\" was already resolved.")
            : new DecisionAnswer(resolution, null, null);
    }

    /// <summary>
    /// Withdraws a pending decision whose asker is gone (its build was cancelled or failed): it is
    /// resolved with <c>resolvedBy: "cancelled"</c> and no option, so clients close the prompt.
    /// </summary>
    public async Task<bool> WithdrawAsync(string decisionId)
    {
        return _pending.TryGetValue(decisionId, out var entry)
            && await ResolveAsync(entry.Decision, null, "cancelled", null, null) is not null;
    }

    /// <summary>
    /// Waits for a decision's resolution, made on this node or (shared store) any other; null when
    /// it does not come within <paramref name="timeout"/>.
    /// </summary>
    public async Task<DecisionResolution?> WaitAsync(string decisionId, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (!_pending.TryGetValue(decisionId, out var entry))
        {
            var stored = await _store.LoadAsync(decisionId, cancellationToken);
            if (stored is null || stored.Resolution is not null || !_store.Shared)
            {
                return stored?.Resolution;
            }

            // asked on another node: wait here too (this node also applies its default at the deadline)
            entry = Track(stored);

            // a resolution made between the read and the tracking was announced to no one here
            if ((await _store.LoadAsync(decisionId, cancellationToken))?.Resolution is { } meanwhile)
            {
                Settle(decisionId, meanwhile);
            }
        }

        try
        {
            return await entry.Completion.Task.WaitAsync(timeout, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    /// <summary>
    /// Applies the default of every decision past its deadline that no node resolved (a shared
    /// store only; the store lets exactly one node win). Runs on a timer; public for tests.
    /// </summary>
    public async Task SweepAsync()
    {
        try
        {
            foreach (var decision in await _store.LoadDueAsync(_time.GetUtcNow()))
            {
                await ResolveAsync(decision, decision.DefaultOptionId, "timeout", null, null);
            }
        }
#pragma warning disable CA1031 // a timer callback must not crash the process
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "Applying the defaults of due decisions failed");
        }
    }

    private Entry Track(StoredDecision decision)
    {
        var entry = new Entry(decision);
        if (!_pending.TryAdd(decision.DecisionId, entry))
        {
            return _pending.TryGetValue(decision.DecisionId, out var existing) ? existing : entry;
        }

        var due = decision.Deadline - _time.GetUtcNow();
        entry.Timer = _time.CreateDetachedTimer(static s => _ = ((DecisionService)((object[])s!)[0]).OnDeadlineAsync((Entry)((object[])s!)[1]), new object[] { this, entry }, due < TimeSpan.Zero ? TimeSpan.Zero : due, Timeout.InfiniteTimeSpan);
        return entry;
    }

    private async Task OnDeadlineAsync(Entry entry)
    {
        try
        {
            await ResolveAsync(entry.Decision, entry.Decision.DefaultOptionId, "timeout", null, null);
        }
#pragma warning disable CA1031 // a timer callback must not crash the process
        catch (Exception ex)
#pragma warning restore CA1031
        {
            _logger.LogError(ex, "Resolving decision {DecisionId} at its deadline failed", entry.Decision.DecisionId);
        }
    }

    private void OnResolvedElsewhere(string projectId, DecisionResolution resolution) => Settle(resolution.DecisionId, resolution);

    /// <summary>Ends the local tracking of a decision resolved (here or elsewhere) and wakes its waiters.</summary>
    private void Settle(string decisionId, DecisionResolution resolution)
    {
        if (_pending.TryRemove(decisionId, out var entry))
        {
            entry.Timer?.Dispose();
            entry.Completion.TrySetResult(resolution);
        }
    }

    /// <summary>Resolves a decision unless it already was (anywhere): the winner publishes <c>user:decision:resolved</c>.</summary>
    private async Task<DecisionResolution?> ResolveAsync(StoredDecision decision, string? optionId, string resolvedBy, string? userId, string? feedback)
    {
        var resolution = new DecisionResolution(decision.DecisionId, optionId, resolvedBy, userId, feedback, _time.GetUtcNow());
        if (!await _store.TryResolveAsync(decision.DecisionId, resolution))
        {
            // another answer (or node) was first: settle the local waiters with what won
            if (_pending.ContainsKey(decision.DecisionId) && (await _store.LoadAsync(decision.DecisionId))?.Resolution is { } winner)
            {
                Settle(decision.DecisionId, winner);
            }

            return null;
        }

        _pending.TryGetValue(decision.DecisionId, out var entry);
        entry?.Timer?.Dispose();
        var payload = new DecisionResolvedPayload(decision.DecisionId, resolvedBy, optionId, userId, feedback);
        await _publisher.PublishTrustedAsync(decision.ProjectId, EventTypes.DecisionResolved, JsonSerializer.SerializeToElement(payload, StoreJson.Options));
        Settle(decision.DecisionId, resolution);
        Resolved?.Invoke(decision.ProjectId, resolution);
        return resolution;
    }

    public ValueTask DisposeAsync()
    {
        _sweep?.Dispose();
        _store.ResolvedElsewhere -= OnResolvedElsewhere;
        foreach (var entry in _pending.Values)
        {
            entry.Timer?.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private sealed class Entry(StoredDecision decision)
    {
        public StoredDecision Decision { get; } = decision;

        public TaskCompletionSource<DecisionResolution> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ITimer? Timer { get; set; }
    }
}

/// <summary>The payload of <c>user:decision:required</c>.</summary>
internal sealed record DecisionRequiredPayload(string ProjectId, string? AgentId, string DecisionId, string Question, IReadOnlyList<DecisionOption> Options, int Timeout, string DefaultOptionId, long Deadline);

/// <summary>The payload of <c>user:decision:resolved</c>.</summary>
internal sealed record DecisionResolvedPayload(string DecisionId, string ResolvedBy, string? SelectedOptionId, string? UserId, string? Feedback);
