using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Builder.Events;
using Builder.Tests.Infrastructure;
using Cluster.Tests;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests;

/// <summary>
/// The producer path's group commit and batch API (issue 13): concurrent producers of many
/// projects and of one project share SQLite transactions; every accepted event is in the log
/// exactly once, seqs without gap, viewers receive them in seq order; a batch is all or none.
/// </summary>
public sealed class GroupCommitTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "builder-groupcommit-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // a file still open by a process being torn down: the temp folder is cleaned by the system
        }
    }

    private Task<TestGateway> StartSqliteGatewayAsync(Action<Dictionary<string, string?>>? more = null) =>
        TestGateway.StartAsync(s =>
        {
            s["Builder:Store:Provider"] = "sqlite";
            s["Builder:Store:Path"] = Path.Combine(_dir, "builder.db");
            more?.Invoke(s);
        });

    private static object Payload(string tag) => new { agentId = "a1", agentType = "ui", status = "working", progress = 10, message = tag };

    private static object Status(string tag) => new { type = "agent:status:update", payload = Payload(tag) };

    [Fact]
    public async Task Appends_queued_together_share_transactions_and_take_gapless_seqs()
    {
        Directory.CreateDirectory(_dir);
        await using var store = new SqliteStore(Path.Combine(_dir, "direct.db"));
        using var payload = JsonDocument.Parse("{\"n\":1}");

        // while the connection is busy (as with another transaction), 400 appends of 4 projects queue
        var release = await store.HoldConnectionAsync();
        var appends = new List<Task<EventEnvelope>>();
        for (var i = 0; i < 400; i++)
        {
            var project = "p" + (i % 4);
            appends.Add(Task.Run(async () => await store.AppendAsync(project, "agent:status:update", payload.RootElement, 1)));
        }

        await Deadline.UntilAsync(() => store.QueuedAppends == 400, TestGateway.Wait, "400 appends queued");
        Assert.DoesNotContain(appends, a => a.IsCompleted); // nobody answered before a commit
        var before = store.Commits;
        release();
        var envelopes = (await Task.WhenAll(appends)).ToList();

        // one transaction for all of them (fewer than 4 096 events)
        Assert.Equal(1, store.Commits - before);
        for (var p = 0; p < 4; p++)
        {
            // each append answered its own seq, 1..100 without gap or duplicate, and the log holds exactly those
            var own = envelopes.Where(e => e.ProjectId == "p" + p).OrderBy(e => e.Seq).ToList();
            Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), own.Select(e => e.Seq));
            var logged = await store.ReadAsync("p" + p, 0, 1000);
            Assert.Equal(own.Select(e => (e.Seq, e.EventId)), logged.Select(e => (e.Seq, e.EventId)));
        }
    }

    [Fact]
    public async Task Checkpoints_run_on_their_own_thread_and_the_wal_file_starts_over()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "checkpoints.db");
        using var payload = JsonDocument.Parse("{\"text\":\"" + new string('x', 2000) + "\"}");
        await using (var store = new SqliteStore(path))
        {
            // 3 000 commits of ~2 KB (about 50 MB of WAL frames: each commit writes its pages
            // anew). SQLite's own checkpoint (in the committing producer's call) is off; the
            // checkpointer copies the WAL back in the background and empties it past 16 MB, so
            // the file does not keep growing
            for (var i = 0; i < 3000; i++)
            {
                await store.AppendAsync("p" + (i % 8), "agent:output", payload.RootElement, 1);
            }

            Assert.Equal(3000, store.Commits);
            await Deadline.UntilAsync(() => store.Checkpoints >= 3, TestGateway.Wait, "background checkpoints (one per 256 commits)");
            await Deadline.UntilAsync(() => new FileInfo(path + "-wal").Length <= 16 << 20, TestGateway.Wait, "the WAL file back under 16 MB");
            Assert.Equal(375, (await store.ReadAsync("p3", 0, 1000)).Count);
        }

        // closed: the database file alone holds every event (the last connection checkpointed the rest)
        Assert.False(File.Exists(path + "-wal") && new FileInfo(path + "-wal").Length > 0, "the WAL was not checkpointed on close");
        await using var reopened = new SqliteStore(path);
        Assert.Equal(375, await reopened.LatestSeqAsync("p7"));
    }

    [Fact]
    public async Task A_file_of_the_earlier_layout_keeps_its_events_and_takes_new_ones()
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "earlier.db");
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE events (project_id TEXT NOT NULL, seq INTEGER NOT NULL, event_id TEXT NOT NULL, type TEXT NOT NULL,
                  timestamp INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (project_id, seq)) WITHOUT ROWID;
                INSERT INTO events VALUES ('p1', 1, 'e1', 'agent:status:update', 5, '{"n":1}');
                """;
            command.ExecuteNonQuery();
        }

        await using var store = new SqliteStore(path);
        using var payload = JsonDocument.Parse("{\"n\":2}");
        var appended = await store.AppendAsync("p1", "agent:status:update", payload.RootElement, 6);
        Assert.Equal(2, appended.Seq);
        var logged = await store.ReadAsync("p1", 0, 10);
        Assert.Equal([1L, 2L], logged.Select(e => e.Seq));
        Assert.Equal("e1", logged[0].EventId);
    }

    [Fact]
    public async Task Many_producers_on_many_projects_and_on_one_project_every_event_once_in_seq_order()
    {
        await using var gateway = await StartSqliteGatewayAsync();
        string[] projects = ["hot", "c0", "c1", "c2", "c3", "c4", "c5"];
        var viewers = new Dictionary<string, BuilderClient>();
        foreach (var p in projects)
        {
            var viewer = gateway.Client(gateway.Token("viewer-" + p, [p]));
            await viewer.ConnectAsync();
            await viewer.JoinAsync(p);
            viewers[p] = viewer;
        }

        try
        {
            // 12 producers on "hot" at once, one producer on each other project; singles and batches of 5
            var accepted = new System.Collections.Concurrent.ConcurrentBag<(string Project, long Seq, string Tag)>();
            var producers = new List<Task>();
            for (var w = 0; w < 12 + projects.Length - 1; w++)
            {
                var project = w < 12 ? "hot" : projects[w - 11];
                var worker = w;
                producers.Add(Task.Run(async () =>
                {
                    for (var round = 0; round < 6; round++)
                    {
                        if (round % 2 == 0)
                        {
                            var tag = $"w{worker}-r{round}";
                            var envelope = await gateway.PublishAsync(project, "agent:status:update", Payload(tag));
                            accepted.Add((project, envelope.GetProperty("seq").GetInt64(), tag));
                        }
                        else
                        {
                            var batch = Enumerable.Range(0, 5).Select(i => Status($"w{worker}-r{round}-{i}")).ToArray();
                            using var response = await gateway.PublishRawAsync(project, batch);
                            var text = await response.Content.ReadAsStringAsync();
                            Assert.True(response.StatusCode == HttpStatusCode.Accepted, text);
                            var envelopes = JsonDocument.Parse(text).RootElement;
                            Assert.Equal(5, envelopes.GetArrayLength());
                            var seqs = envelopes.EnumerateArray().Select(e => e.GetProperty("seq").GetInt64()).ToList();
                            Assert.Equal(Enumerable.Range(0, 5).Select(i => seqs[0] + i), seqs); // a batch's seqs are consecutive
                            for (var i = 0; i < 5; i++)
                            {
                                accepted.Add((project, seqs[i], $"w{worker}-r{round}-{i}"));
                            }
                        }
                    }
                }));
            }

            await Task.WhenAll(producers);
            var log = gateway.Services.GetRequiredService<IEventLog>();
            foreach (var p in projects)
            {
                var mine = accepted.Where(a => a.Project == p).OrderBy(a => a.Seq).ToList();
                Assert.Equal(p == "hot" ? 12 * 18 : 18, mine.Count);

                // in the log exactly once each, seq 1..N without a gap, each seq the one its producer was answered
                var logged = await log.ReadAsync(p, 0, 10_000);
                Assert.Equal(Enumerable.Range(1, mine.Count).Select(i => (long)i), logged.Select(e => e.Seq));
                Assert.Equal(mine.Select(a => a.Tag), logged.Select(e => e.Payload.GetProperty("message").GetString()));

                // the viewer received them all, in seq order
                var received = new List<long>();
                for (var i = 0; i < mine.Count; i++)
                {
                    received.Add((await viewers[p].NextAsync("agent:status:update")).GetProperty("seq").GetInt64());
                }

                Assert.Equal(Enumerable.Range(1, mine.Count).Select(i => (long)i), received);
            }
        }
        finally
        {
            foreach (var v in viewers.Values)
            {
                await v.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_batch_with_an_invalid_event_is_refused_whole_with_each_index_and_field()
    {
        await using var gateway = await StartSqliteGatewayAsync(s => s["Builder:Producers:MaxBatchEvents"] = "4");
        await using var viewer = gateway.Client(gateway.Token("alice", ["p1"]));
        await viewer.ConnectAsync();
        await viewer.JoinAsync("p1");

        object[] batch =
        [
            Status("ok-0"),
            new { type = "agent:status:update", payload = new { agentId = "a1", agentType = "ui", status = "sleeping", progress = 10 } },
            Status("ok-2"),
            new { type = "not:a:type", payload = new { } },
        ];
        using var refused = await gateway.PublishRawAsync("p1", batch);
        var body = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("VALIDATION_FAILED", body.GetProperty("error").GetProperty("code").GetString());
        var errors = body.GetProperty("error").GetProperty("fields").EnumerateArray().Select(e => (Index: e.GetProperty("index").GetInt32(), Field: e.GetProperty("field").GetString()!)).ToList();
        Assert.Contains(errors, e => e.Index == 3 && e.Field == "type");
        Assert.DoesNotContain(errors, e => e.Index is 0 or 2);

        // the structural error of [3] is named first; once [3] is fixed, [1]'s payload is named
        batch[3] = Status("ok-3");
        using var refusedAgain = await gateway.PublishRawAsync("p1", batch);
        var again = JsonDocument.Parse(await refusedAgain.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal(HttpStatusCode.BadRequest, refusedAgain.StatusCode);
        var field = Assert.Single(again.GetProperty("fields").EnumerateArray());
        Assert.Equal(1, field.GetProperty("index").GetInt32());
        Assert.EndsWith("status", field.GetProperty("field").GetString(), StringComparison.Ordinal);
        Assert.Contains("[1]", again.GetProperty("message").GetString(), StringComparison.Ordinal);

        // too many events, and none
        using var tooMany = await gateway.PublishRawAsync("p1", Enumerable.Range(0, 5).Select(i => Status("x")).ToArray());
        Assert.Equal(HttpStatusCode.BadRequest, tooMany.StatusCode);
        Assert.Contains("MaxBatchEvents", await tooMany.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var none = await gateway.PublishRawAsync("p1", Array.Empty<object>());
        Assert.Equal(HttpStatusCode.BadRequest, none.StatusCode);

        // nothing of the refused batches was logged or delivered
        var log = gateway.Services.GetRequiredService<IEventLog>();
        Assert.Equal(0, await log.LatestSeqAsync("p1"));
        await viewer.BarrierAsync();
        Assert.Equal(0, viewer.Pending("agent:status:update"));

        // the fixed batch is accepted whole: 202 with the envelopes in order
        batch[1] = Status("ok-1");
        using var accepted = await gateway.PublishRawAsync("p1", batch);
        var envelopes = JsonDocument.Parse(await accepted.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        Assert.Equal([1L, 2L, 3L, 4L], envelopes.EnumerateArray().Select(e => e.GetProperty("seq").GetInt64()));
        Assert.Equal(["ok-0", "ok-1", "ok-2", "ok-3"], envelopes.EnumerateArray().Select(e => e.GetProperty("payload").GetProperty("message").GetString()));
        for (var seq = 1; seq <= 4; seq++)
        {
            Assert.Equal(seq, (await viewer.NextAsync("agent:status:update")).GetProperty("seq").GetInt64());
        }
    }

    [Fact]
    public async Task The_in_process_batch_call_validates_all_first()
    {
        await using var gateway = await TestGateway.StartAsync();
        var publisher = gateway.Services.GetRequiredService<EventPublisher>();
        var good = JsonSerializer.SerializeToElement(new { agentId = "a1", agentType = "ui", status = "working", progress = 1 });
        var bad = JsonSerializer.SerializeToElement(new { agentId = "a1", agentType = "ui", status = "working", progress = 101 });
        var refused = await publisher.PublishBatchAsync("p1", [new EventDraft("agent:status:update", good), new EventDraft("agent:status:update", bad)]);
        Assert.False(refused.Ok);
        var error = Assert.Single(refused.Errors);
        Assert.Equal(1, error.Index);
        Assert.EndsWith("progress", error.Field, StringComparison.Ordinal);
        Assert.Equal(0, await gateway.Services.GetRequiredService<IEventLog>().LatestSeqAsync("p1"));

        var ok = await publisher.PublishBatchAsync("p1", [new EventDraft("agent:status:update", good), new EventDraft("agent:status:update", good)]);
        Assert.True(ok.Ok);
        Assert.Equal([1L, 2L], ok.Envelopes!.Select(e => e.Seq));
    }
}
