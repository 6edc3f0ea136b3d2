using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Builder.Events;

/// <summary>
/// SQLite persistence (the embedded default): the event log and the decisions, in one file.
/// One connection, serialized by a semaphore; WAL mode.
/// </summary>
public sealed class SqliteStore : IEventLog, IDecisionStore, IBuildStore
{
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private int _disposed;

    public SqliteStore(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous=NORMAL;
            CREATE TABLE IF NOT EXISTS events (
              project_id TEXT NOT NULL,
              seq INTEGER NOT NULL,
              event_id TEXT NOT NULL,
              type TEXT NOT NULL,
              timestamp INTEGER NOT NULL,
              payload TEXT NOT NULL,
              PRIMARY KEY (project_id, seq)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS builds (
              build_id TEXT PRIMARY KEY,
              project_id TEXT NOT NULL,
              state TEXT NOT NULL,
              body TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS decisions (
              decision_id TEXT PRIMARY KEY,
              project_id TEXT NOT NULL,
              state TEXT NOT NULL,
              body TEXT NOT NULL
            );
            """);
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public async ValueTask<EventEnvelope> AppendAsync(string projectId, string type, JsonElement payload, long timestamp, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = """
                INSERT INTO events (project_id, seq, event_id, type, timestamp, payload)
                VALUES ($p, COALESCE((SELECT MAX(seq) FROM events WHERE project_id = $p), 0) + 1, $id, $type, $ts, $payload)
                RETURNING seq;
                """;
            var eventId = Guid.NewGuid().ToString();
            command.Parameters.AddWithValue("$p", projectId);
            command.Parameters.AddWithValue("$id", eventId);
            command.Parameters.AddWithValue("$type", type);
            command.Parameters.AddWithValue("$ts", timestamp);
            command.Parameters.AddWithValue("$payload", payload.GetRawText());
            var seq = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            return new EventEnvelope(type, timestamp, payload.Clone(), projectId, seq, eventId);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask<IReadOnlyList<EventEnvelope>> ReadAsync(string projectId, long afterSeq, int limit, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = "SELECT seq, event_id, type, timestamp, payload FROM events WHERE project_id = $p AND seq > $after ORDER BY seq LIMIT $limit";
            command.Parameters.AddWithValue("$p", projectId);
            command.Parameters.AddWithValue("$after", afterSeq);
            command.Parameters.AddWithValue("$limit", limit);
            var result = new List<EventEnvelope>();
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                using var doc = JsonDocument.Parse(reader.GetString(4));
                result.Add(new EventEnvelope(reader.GetString(2), reader.GetInt64(3), doc.RootElement.Clone(), projectId, reader.GetInt64(0), reader.GetString(1)));
            }

            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    public ValueTask<long> LatestSeqAsync(string projectId, CancellationToken cancellationToken = default) =>
        ScalarAsync("SELECT COALESCE(MAX(seq), 0) FROM events WHERE project_id = $p", projectId, cancellationToken);

    public ValueTask<long> EarliestSeqAsync(string projectId, CancellationToken cancellationToken = default) =>
        ScalarAsync("SELECT COALESCE(MIN(seq), 0) FROM events WHERE project_id = $p", projectId, cancellationToken);

    private async ValueTask<long> ScalarAsync(string sql, string projectId, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$p", projectId);
            return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }
        finally
        {
            _gate.Release();
        }
    }

    public ValueTask SaveAsync(StoredDecision decision, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return UpsertAsync("decisions", "decision_id", decision.DecisionId, decision.ProjectId, decision.Resolution is null ? "pending" : "resolved", decision, cancellationToken);
    }

    public async ValueTask<StoredDecision?> LoadAsync(string decisionId, CancellationToken cancellationToken = default) =>
        (await LoadBodiesAsync<StoredDecision>("SELECT body FROM decisions WHERE decision_id = $key", decisionId, cancellationToken)).FirstOrDefault();

    public async ValueTask<IReadOnlyList<StoredDecision>> LoadPendingAsync(string? projectId = null, CancellationToken cancellationToken = default)
    {
        var pending = await LoadBodiesAsync<StoredDecision>("SELECT body FROM decisions WHERE state = $key", "pending", cancellationToken);
        return projectId is null ? pending : pending.Where(d => d.ProjectId == projectId).ToList();
    }

    public async ValueTask<bool> TryResolveAsync(string decisionId, DecisionResolution resolution, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            StoredDecision? current;
            using (var read = _connection.CreateCommand())
            {
                read.CommandText = "SELECT body FROM decisions WHERE decision_id = $id AND state = 'pending'";
                read.Parameters.AddWithValue("$id", decisionId);
                current = await read.ExecuteScalarAsync(cancellationToken) is string body ? JsonSerializer.Deserialize<StoredDecision>(body, StoreJson.Options) : null;
            }

            if (current is null)
            {
                return false;
            }

            using var command = _connection.CreateCommand();
            command.CommandText = "UPDATE decisions SET state = 'resolved', body = $body WHERE decision_id = $id AND state = 'pending'";
            command.Parameters.AddWithValue("$id", decisionId);
            command.Parameters.AddWithValue("$body", JsonSerializer.Serialize(current with { Resolution = resolution }, StoreJson.Options));
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }
        finally
        {
            _gate.Release();
        }
    }

    public ValueTask SaveBuildAsync(BuildRecord build, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(build);
        return UpsertAsync("builds", "build_id", build.BuildId, build.ProjectId, build.State, build, cancellationToken);
    }

    public ValueTask<IReadOnlyList<BuildRecord>> LoadRunningBuildsAsync(CancellationToken cancellationToken = default) =>
        LoadBodiesAsync<BuildRecord>("SELECT body FROM builds WHERE state = $key", "running", cancellationToken);

    /// <summary>Inserts or replaces a JSON document row of the decisions or builds table.</summary>
    private async ValueTask UpsertAsync<T>(string table, string idColumn, string id, string projectId, string state, T body, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = $"""
                INSERT INTO {table} ({idColumn}, project_id, state, body) VALUES ($id, $p, $state, $body)
                ON CONFLICT({idColumn}) DO UPDATE SET state = excluded.state, body = excluded.body;
                """;
            command.Parameters.AddWithValue("$id", id);
            command.Parameters.AddWithValue("$p", projectId);
            command.Parameters.AddWithValue("$state", state);
            command.Parameters.AddWithValue("$body", JsonSerializer.Serialize(body, StoreJson.Options));
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask<IReadOnlyList<T>> LoadBodiesAsync<T>(string sql, string key, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$key", key);
            var result = new List<T>();
            using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                result.Add(JsonSerializer.Deserialize<T>(reader.GetString(0), StoreJson.Options)!);
            }

            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        // registered under several service types: the container disposes it more than once
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _gate.WaitAsync();
        await _connection.DisposeAsync();
        _gate.Dispose();
    }
}

internal static class StoreJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
