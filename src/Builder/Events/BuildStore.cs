using System.Collections.Concurrent;

namespace Builder.Events;

/// <summary>A build as persisted: enough to end it cleanly after a crash.</summary>
public sealed record BuildRecord(string BuildId, string ProjectId, string State, string Phase, DateTimeOffset StartedAt);

/// <summary>Where running builds are recorded, so a restart can end the interrupted ones.</summary>
public interface IBuildStore
{
    ValueTask SaveBuildAsync(BuildRecord build, CancellationToken cancellationToken = default);

    ValueTask<IReadOnlyList<BuildRecord>> LoadRunningBuildsAsync(CancellationToken cancellationToken = default);
}

public sealed class InMemoryBuildStore : IBuildStore
{
    private readonly ConcurrentDictionary<string, BuildRecord> _builds = new(StringComparer.Ordinal);

    public ValueTask SaveBuildAsync(BuildRecord build, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(build);
        _builds[build.BuildId] = build;
        return ValueTask.CompletedTask;
    }

    public ValueTask<IReadOnlyList<BuildRecord>> LoadRunningBuildsAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<BuildRecord>>(_builds.Values.Where(b => b.State == "running").ToList());
}
