using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Builder.Events;

/// <summary>How hard a commit of the SQLite store reaches the disk (<c>Builder:Store:Durability</c>).</summary>
public enum SqliteDurability
{
    /// <summary>
    /// WAL with <c>synchronous=NORMAL</c>: a committed event is in the WAL file (the operating
    /// system's cache) before its producer is answered, so it survives the process's crash; a
    /// machine crash or power loss may lose the commits since the last checkpoint's sync.
    /// </summary>
    Normal,

    /// <summary>WAL with <c>synchronous=FULL</c>: every commit is fsynced before producers are answered; it survives a machine crash too.</summary>
    Full,
}

/// <summary>
/// SQLite persistence (the embedded default): the event log and the decisions, in one file.
/// One connection, serialized by a semaphore; WAL mode. Appends are group-committed: every
/// producer's events go into a queue; one writer at a time (the producer that found none) writes
/// all that is waiting (events of any project, up to <see cref="MaxEventsPerCommit"/>) in one
/// transaction, then answers each producer once the transaction is committed. The log assigns seq inside the
/// transaction (the project's last seq + 1), so a project's events take seq in queue order,
/// without gap or duplicate.
/// </summary>
public sealed class SqliteStore : IEventLog, IDecisionStore, IBuildStore
{
    /// <summary>Most events written by one transaction of the writer loop.</summary>
    public const int MaxEventsPerCommit = 4096;

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly object _queueLock = new();
    private readonly SqliteCommand _insert;
    private List<AppendJob> _pending = [];
    private bool _writing; // a writer drains _pending (under _queueLock)
    private bool _closed; // under _queueLock
    private TaskCompletionSource? _drained; // completed when the current writer stops (under _queueLock)
    private long _commits;
    private int _disposed;
    private readonly Checkpointer _checkpointer;

    public SqliteStore(string path, SqliteDurability durability = SqliteDurability.Normal)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }

        Durability = durability;
        _connection = new SqliteConnection(ConnectionString(path));
        _connection.Open();

        // the events in a rowid table (appended at its end, so a commit writes few pages whatever
        // the projects) with a small unique index on (project_id, seq). Files made before this
        // layout keep theirs (the same columns, clustered on (project_id, seq)): their events
        // need no second index.
        bool clustered;
        using (var layout = _connection.CreateCommand())
        {
            layout.CommandText = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'";
            clustered = layout.ExecuteScalar() is string existing && existing.Contains("WITHOUT ROWID", StringComparison.OrdinalIgnoreCase);
        }

        Execute($"""
            PRAGMA journal_mode=WAL;
            PRAGMA synchronous={(durability == SqliteDurability.Full ? "FULL" : "NORMAL")};
            PRAGMA wal_autocheckpoint=0;
            CREATE TABLE IF NOT EXISTS events (
              project_id TEXT NOT NULL,
              seq INTEGER NOT NULL,
              event_id TEXT NOT NULL,
              type TEXT NOT NULL,
              timestamp INTEGER NOT NULL,
              payload TEXT NOT NULL
            );
            {(clustered ? string.Empty : "CREATE UNIQUE INDEX IF NOT EXISTS events_project_seq ON events (project_id, seq);")}
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

        _insert = _connection.CreateCommand();
        _insert.CommandText = """
            INSERT INTO events (project_id, seq, event_id, type, timestamp, payload)
            VALUES ($p, COALESCE((SELECT MAX(seq) FROM events WHERE project_id = $p), 0) + 1, $id, $type, $ts, $payload)
            RETURNING seq;
            """;
        _insert.Parameters.Add("$p", SqliteType.Text);
        _insert.Parameters.Add("$id", SqliteType.Text);
        _insert.Parameters.Add("$type", SqliteType.Text);
        _insert.Parameters.Add("$ts", SqliteType.Integer);
        _insert.Parameters.Add("$payload", SqliteType.Text);
        _insert.Prepare();

        // WAL checkpoints (copying the WAL back into the database file, with its fsyncs) run on a
        // thread of their own, never in a producer's commit: SQLite's automatic checkpoint is off
        _checkpointer = new Checkpointer(path, _gate);
    }

    /// <summary>WAL checkpoints the background checkpointer has run so far (tests).</summary>
    public long Checkpoints => _checkpointer.Count;

    /// <summary>A connection of its own to the file (no pool: closing it releases the file).</summary>
    private static string ConnectionString(string path) => new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString();

    /// <summary>The durability this store was opened with.</summary>
    public SqliteDurability Durability { get; }

    /// <summary>Transactions the writer loop committed so far (tests: appends share them).</summary>
    public long Commits => Interlocked.Read(ref _commits);

    /// <summary>Appends waiting for the writer now (tests).</summary>
    internal int QueuedAppends
    {
        get
        {
            lock (_queueLock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>Holds the connection until the returned release is called: appends queue meanwhile (tests of the group commit).</summary>
    internal async Task<Action> HoldConnectionAsync()
    {
        await _gate.WaitAsync();
        return () => _gate.Release();
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public async ValueTask<EventEnvelope> AppendAsync(string projectId, string type, JsonElement payload, long timestamp, CancellationToken cancellationToken = default) =>
        (await AppendBatchAsync(projectId, [new NewEvent(type, payload, timestamp)], cancellationToken))[0];

    /// <summary>
    /// Queues the events for the writer loop and completes when the transaction holding them is
    /// committed (with their seqs, consecutive, in the given order), or fails when it could not be.
    /// Once queued, the events are written even if <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public async ValueTask<IReadOnlyList<EventEnvelope>> AppendBatchAsync(string projectId, IReadOnlyList<NewEvent> events, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(events);
        cancellationToken.ThrowIfCancellationRequested();
        if (events.Count == 0)
        {
            return [];
        }

        var job = new AppendJob(projectId, events);
        bool lead;
        lock (_queueLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            _pending.Add(job);
            lead = !_writing;
            if (lead)
            {
                _writing = true;
                _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        if (lead)
        {
            // the first producer to find no writer writes, on its own thread: no hop when alone
            _ = WriteQueuedAsync();
        }

        return await job.Done.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// The writer: commits everything queued (up to <see cref="MaxEventsPerCommit"/> events per
    /// transaction) until the queue is empty. The first batch is written on the leading
    /// producer's thread; if more has queued meanwhile the writer goes on on the pool, so that the
    /// leading producer is answered at once. Producers that arrive while it writes join the next
    /// transaction: group commit.
    /// </summary>
    private async Task WriteQueuedAsync()
    {
        var batch = new List<AppendJob>();
        var first = true;
        while (true)
        {
            if (!first)
            {
                await Task.Yield();
            }

            first = false;
            await _gate.WaitAsync().ConfigureAwait(false);
            try
            {
                lock (_queueLock)
                {
                    var count = 0;
                    var taken = 0;
                    while (taken < _pending.Count && (taken == 0 || count + _pending[taken].Events.Count <= MaxEventsPerCommit))
                    {
                        count += _pending[taken].Events.Count;
                        batch.Add(_pending[taken]);
                        taken++;
                    }

                    if (taken == _pending.Count)
                    {
                        _pending = [];
                    }
                    else
                    {
                        _pending.RemoveRange(0, taken);
                    }

                    if (batch.Count == 0)
                    {
                        _writing = false;
                        _drained!.TrySetResult();
                        return;
                    }
                }

                if (!TryCommit(batch, out var failure))
                {
                    // one job's failure must not fail the others: each in its own transaction
                    if (batch.Count == 1)
                    {
                        batch[0].Done.TrySetException(failure!);
                    }
                    else
                    {
                        foreach (var single in batch)
                        {
                            if (!TryCommit([single], out var own))
                            {
                                single.Done.TrySetException(own!);
                            }
                        }
                    }
                }
            }
            finally
            {
                _gate.Release();
                batch.Clear();
            }

            // no early exit when the queue is empty now: the turn on the pool lets the producers
            // running meanwhile queue, and they share the next commit (the writer stops at the
            // top of the loop when nothing came)
        }
    }

    /// <summary>Writes the jobs in one transaction; on success completes each job's task after the commit.</summary>
    private bool TryCommit(List<AppendJob> jobs, out Exception? failure)
    {
        var results = new EventEnvelope[jobs.Count][];
        SqliteTransaction? transaction = null;
        try
        {
            transaction = _connection.BeginTransaction(deferred: false);
            _insert.Transaction = transaction;
            for (var j = 0; j < jobs.Count; j++)
            {
                var job = jobs[j];
                var envelopes = new EventEnvelope[job.Events.Count];
                _insert.Parameters[0].Value = job.ProjectId;
                for (var i = 0; i < envelopes.Length; i++)
                {
                    var e = job.Events[i];
                    var eventId = Guid.NewGuid().ToString();
                    _insert.Parameters[1].Value = eventId;
                    _insert.Parameters[2].Value = e.Type;
                    _insert.Parameters[3].Value = e.Timestamp;
                    _insert.Parameters[4].Value = e.Payload.GetRawText();
                    var seq = (long)_insert.ExecuteScalar()!;
                    envelopes[i] = new EventEnvelope(e.Type, e.Timestamp, e.Payload.Clone(), job.ProjectId, seq, eventId);
                }

                results[j] = envelopes;
            }

            transaction.Commit();
            Interlocked.Increment(ref _commits);
            _checkpointer.Committed();
        }
#pragma warning disable CA1031 // the failure is handed to the producers whose events it concerns
        catch (Exception ex)
#pragma warning restore CA1031
        {
            try
            {
                transaction?.Rollback();
            }
            catch (SqliteException)
            {
                // the transaction is gone already (SQLite rolled it back itself)
            }

            failure = ex;
            return false;
        }
        finally
        {
            _insert.Transaction = null;
            transaction?.Dispose();
        }

        for (var j = 0; j < jobs.Count; j++)
        {
            jobs[j].Done.TrySetResult(results[j]);
        }

        failure = null;
        return true;
    }

    /// <summary>One producer's events of one project, waiting for the writer loop.</summary>
    private sealed class AppendJob(string projectId, IReadOnlyList<NewEvent> events)
    {
        public string ProjectId { get; } = projectId;

        public IReadOnlyList<NewEvent> Events { get; } = events;

        public TaskCompletionSource<IReadOnlyList<EventEnvelope>> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
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

        // the events queued so far are written before the connection closes
        Task drained;
        lock (_queueLock)
        {
            _closed = true;
            drained = _writing ? _drained!.Task : Task.CompletedTask;
        }

        await drained.ConfigureAwait(false);
        await _gate.WaitAsync();
        _checkpointer.Dispose();
        await _insert.DisposeAsync();

        // the last connection to close checkpoints the WAL into the database file
        await _connection.DisposeAsync();
        _gate.Dispose();
    }

    /// <summary>
    /// Checkpoints the WAL on its own thread and connection, not in a producer's commit (SQLite's
    /// automatic checkpoint is off). After every <see cref="CommitsPerCheckpoint"/> commits, or once
    /// a second when anything was committed, it runs <c>PRAGMA wal_checkpoint(PASSIVE)</c>, which
    /// copies what is committed into the database file without blocking the writer. A passive
    /// checkpoint racing a steady writer never finds the WAL wholly copied, so the WAL would only
    /// grow; once it passes <see cref="MaxWalBytes"/> the checkpointer takes the store's connection
    /// gate (producers queue meanwhile, as they did behind SQLite's own checkpoint, but for the
    /// tail the passive runs left, not for the whole WAL) and runs <c>wal_checkpoint(TRUNCATE)</c>,
    /// which copies the rest and empties the file. What a commit guarantees is unchanged: in
    /// <c>normal</c> it is in the WAL file (the OS cache) before its answer, in <c>full</c> the commit
    /// fsyncs the WAL.
    /// </summary>
    private sealed class Checkpointer : IDisposable
    {
        private const int CommitsPerCheckpoint = 256;
        private const long MaxWalBytes = 16 << 20;

        private readonly SqliteConnection _connection;
        private readonly SemaphoreSlim _storeGate;
        private readonly string _walPath;
        private readonly Thread _thread;
        private readonly SemaphoreSlim _wake = new(0, 1);
        private readonly CancellationTokenSource _stop = new();
        private int _sinceLast; // commits since the last checkpoint began
        private long _count;

        public Checkpointer(string path, SemaphoreSlim storeGate)
        {
            _storeGate = storeGate;
            _walPath = Path.GetFullPath(path) + "-wal";
            _connection = new SqliteConnection(ConnectionString(path));
            _connection.Open();
            _thread = new Thread(Run) { IsBackground = true, Name = "sqlite-checkpoint" };
            _thread.Start();
        }

        public long Count => Interlocked.Read(ref _count);

        /// <summary>Called by the writer after a commit: wakes the checkpointer every <see cref="CommitsPerCheckpoint"/> commits.</summary>
        public void Committed()
        {
            if (Interlocked.Increment(ref _sinceLast) % CommitsPerCheckpoint == 0 && _wake.CurrentCount == 0)
            {
                try
                {
                    _wake.Release();
                }
                catch (SemaphoreFullException)
                {
                    // woken already
                }
            }
        }

        private void Run()
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    _wake.Wait(TimeSpan.FromSeconds(1), _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                if (Interlocked.Exchange(ref _sinceLast, 0) == 0)
                {
                    continue;
                }

                try
                {
                    Checkpoint("PASSIVE");
                    if (WalBytes() > MaxWalBytes)
                    {
                        // the store's connection idle (no transaction, no reader): the rest is copied and the file emptied
                        _storeGate.Wait(_stop.Token);
                        try
                        {
                            Checkpoint("TRUNCATE");
                        }
                        finally
                        {
                            _storeGate.Release();
                        }
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (SqliteException)
                {
                    // retried at the next turn; the WAL keeps the commits meanwhile
                }
            }
        }

        private void Checkpoint(string mode)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = $"PRAGMA wal_checkpoint({mode})";
            command.ExecuteNonQuery();
            Interlocked.Increment(ref _count);
        }

        private long WalBytes()
        {
            try
            {
                return new FileInfo(_walPath).Length;
            }
            catch (IOException)
            {
                return 0;
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _thread.Join();
            _connection.Dispose();
            _stop.Dispose();
            _wake.Dispose();
        }
    }
}

internal static class StoreJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };
}
