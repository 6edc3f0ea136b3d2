using Builder.Events;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests.Runner;

/// <summary>
/// A gateway stopping gracefully (IHostedService stop) does not leave its running builds to
/// expire silently: it settles their agents' cards and reports each <c>build:failed</c>
/// <c>INTERRUPTED</c> (reason "shutdown") before it goes, and gives their projects back. A build
/// left recorded running by a process that died is ended at the next start (a cluster node killed
/// with -9: Cluster.Tests).
/// </summary>
public sealed class BuildShutdownTests
{
    [Fact]
    public async Task Build_running_at_a_graceful_shutdown_is_reported_interrupted_once_and_the_project_builds_again()
    {
        var path = Path.Combine(Path.GetTempPath(), "builder-runner-tests-" + Guid.NewGuid().ToString("N") + ".db");
        void Sqlite(Dictionary<string, string?> s)
        {
            s["Builder:Store:Provider"] = "sqlite";
            s["Builder:Store:Path"] = path;
        }

        try
        {
            long startedSeq;
            long completedSeq;
            string buildId;
            var first = await FakePacing.StartGatewayAsync(Sqlite);
            try
            {
                // a build that completed before the stop: not to be touched by the shutdown
                await using (var carol = first.Client(first.Token("carol", ["shop-done"])))
                {
                    await carol.ConnectAsync();
                    await carol.JoinAsync("shop-done");
                    await BuildApi.StartAsync(first, "shop-done", speed: FakePacing.Speed);
                    var done = await EventStream.RunToEndAsync(carol, answer: "option-1", clock: first.Time);
                    Assert.True(done[^1].Name == "build:completed", EventStream.Describe(done));
                    completedSeq = done[^1].Seq();
                }

                // a build on the runner's fake clock, which no longer moves: its four agents are
                // working on the analyze phase when the gateway stops
                await using var alice = first.Client(first.Token("alice", ["shop-slow"]));
                await alice.ConnectAsync();
                await alice.JoinAsync("shop-slow");
                buildId = await BuildApi.StartAsync(first, "shop-slow", speed: FakePacing.Speed);
                var working = 0;
                var started = await EventStream.ReadUntilAsync(alice, e => e.Name == "agent:status:update" && ++working == 4);
                startedSeq = started.Single(e => e.Name == "build:started").Seq();
                Assert.Equal(buildId, started[0].Payload().GetProperty("buildId").GetString());
            }
            finally
            {
                await StopAsync(first);
            }

            var second = await FakePacing.StartGatewayAsync(Sqlite);
            try
            {
                // what the stop recorded, replayed from the last event seen: the cards settled, then
                // the build's end; the restart added nothing (its start-up sweep found no running build)
                await using var alice2 = second.Client(second.Token("alice", ["shop-slow"]));
                await alice2.ConnectAsync();
                await alice2.JoinAsync("shop-slow", lastSeq: startedSeq);
                var replayed = await EventStream.ReadUntilAsync(alice2, "build:failed");
                var failedAt = replayed.Count - 1;
                var error = replayed[failedAt].Payload().GetProperty("error");
                Assert.Equal(buildId, replayed[failedAt].Payload().GetProperty("buildId").GetString());
                Assert.Equal("INTERRUPTED", error.GetProperty("code").GetString());
                Assert.Equal("shutdown", error.GetProperty("details").GetProperty("reason").GetString());
                Assert.Equal("analyze", error.GetProperty("phase").GetString());
                Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
                Assert.NotEmpty(error.GetProperty("suggestions").EnumerateArray());
                var lastCards = replayed.Where(e => e.Name == "agent:status:update")
                    .GroupBy(e => e.Payload().GetProperty("agentId").GetString()!)
                    .ToDictionary(g => g.Key, g => g.Last().Payload().GetProperty("status").GetString());
                Assert.Equal(4, lastCards.Count);
                Assert.All(lastCards, c => Assert.True(c.Value == "idle", $"{c.Key} left {c.Value} by the shutdown:\n{EventStream.Describe(replayed)}"));
                Assert.DoesNotContain(replayed, e => e.Name is "build:completed" or "build:cancelled");
                await alice2.BarrierAsync();
                Assert.DoesNotContain(alice2.DrainAll(), e => e.Name == "build:failed");

                // a late joiner's snapshot
                await using var bob = second.Client(second.Token("bob", ["shop-slow"]));
                await bob.ConnectAsync();
                await bob.JoinAsync("shop-slow");
                var snapshot = await bob.NextAsync("project:snapshot");
                Assert.Equal("failed", snapshot.GetProperty("build").GetProperty("state").GetString());
                Assert.Equal("INTERRUPTED", snapshot.GetProperty("build").GetProperty("error").GetProperty("code").GetString());
                Assert.All(snapshot.GetProperty("agents").EnumerateArray(), a => Assert.NotEqual("working", a.GetProperty("status").GetString()));

                // the completed build was not touched
                await using var carol2 = second.Client(second.Token("carol", ["shop-done"]));
                await carol2.ConnectAsync();
                var ack = await carol2.JoinAsync("shop-done", lastSeq: completedSeq);
                Assert.Equal(completedSeq, ack.GetProperty("seq").GetInt64());
                await carol2.BarrierAsync();
                Assert.Equal(0, carol2.Pending("build:failed"));

                // the project was given back: it builds again
                var next = await BuildApi.StartAsync(second, "shop-slow", speed: FakePacing.Speed);
                Assert.NotEqual(buildId, next);
                await EventStream.ReadUntilAsync(alice2, "build:started");
            }
            finally
            {
                await StopAsync(second);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }
    }

    [Fact]
    public async Task Deployment_running_at_a_graceful_shutdown_is_reported_failed_interrupted_and_the_build_stays_completed()
    {
        var path = Path.Combine(Path.GetTempPath(), "builder-runner-tests-" + Guid.NewGuid().ToString("N") + ".db");
        void Sqlite(Dictionary<string, string?> s)
        {
            s["Builder:Store:Provider"] = "sqlite";
            s["Builder:Store:Path"] = path;
        }

        try
        {
            long completedSeq;
            var first = await FakePacing.StartGatewayAsync(Sqlite);
            try
            {
                await using var alice = first.Client(first.Token("alice", ["shop-deploying"]));
                await alice.ConnectAsync();
                await alice.JoinAsync("shop-deploying");
                await BuildApi.StartAsync(first, "shop-deploying", speed: FakePacing.Speed, deploy: true);
                var events = await EventStream.RunToEndAsync(alice, answer: "option-1", clock: first.Time);
                Assert.True(events[^1].Name == "build:completed", EventStream.Describe(events));
                completedSeq = events[^1].Seq();

                // the deployment agent is at work (the clock stands still from here) when the gateway stops
                await EventStream.ReadUntilAsync(alice, "deployment:progress", events, clock: first.Time);
            }
            finally
            {
                await StopAsync(first);
            }

            var second = await FakePacing.StartGatewayAsync(Sqlite);
            try
            {
                await using var alice2 = second.Client(second.Token("alice", ["shop-deploying"]));
                await alice2.ConnectAsync();
                await alice2.JoinAsync("shop-deploying", lastSeq: completedSeq);
                var replayed = await EventStream.ReadUntilAsync(alice2, e => e.Name is "deployment:failed" or "deployment:success" or "build:failed");
                Assert.Equal("deployment:failed", replayed[^1].Name);
                var error = replayed[^1].Payload().GetProperty("error");
                Assert.Equal("INTERRUPTED", error.GetProperty("code").GetString());
                Assert.Equal("deploy", error.GetProperty("phase").GetString());
                Assert.Equal("shutdown", error.GetProperty("details").GetProperty("reason").GetString());
                var card = replayed.Last(e => e.Name == "agent:status:update").Payload();
                Assert.Equal("agent-deployment", card.GetProperty("agentId").GetString());
                Assert.Equal("idle", card.GetProperty("status").GetString());
                await alice2.BarrierAsync();
                Assert.DoesNotContain(alice2.DrainAll(), e => e.Name is "build:failed" or "deployment:failed");

                // the build itself stays completed
                await using var bob = second.Client(second.Token("bob", ["shop-deploying"]));
                await bob.ConnectAsync();
                await bob.JoinAsync("shop-deploying");
                var snapshot = await bob.NextAsync("project:snapshot");
                Assert.Equal("completed", snapshot.GetProperty("build").GetProperty("state").GetString());
                Assert.Equal("failed", snapshot.GetProperty("deployment").GetProperty("state").GetString());
            }
            finally
            {
                await StopAsync(second);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }
    }

    [Fact]
    public async Task Build_left_running_by_a_process_that_died_is_reported_interrupted_at_the_next_start()
    {
        var path = Path.Combine(Path.GetTempPath(), "builder-runner-tests-" + Guid.NewGuid().ToString("N") + ".db");
        void Sqlite(Dictionary<string, string?> s)
        {
            s["Builder:Store:Provider"] = "sqlite";
            s["Builder:Store:Path"] = path;
        }

        try
        {
            // what a process killed during a build leaves in its store: the build recorded running
            var first = await FakePacing.StartGatewayAsync(Sqlite);
            var startedAt = first.Time.GetUtcNow();
            try
            {
                await first.Services.GetRequiredService<SqliteStore>().SaveBuildAsync(new BuildRecord("build-crashed01", "shop-crashed", "running", "generate", startedAt));
            }
            finally
            {
                await StopAsync(first);
            }

            var second = await FakePacing.StartGatewayAsync(Sqlite);
            try
            {
                await using var alice = second.Client(second.Token("alice", ["shop-crashed"]));
                await alice.ConnectAsync();
                await alice.JoinAsync("shop-crashed", lastSeq: 0);
                var replayed = await EventStream.ReadUntilAsync(alice, "build:failed");
                var failed = replayed[^1].Payload();
                Assert.Equal("build-crashed01", failed.GetProperty("buildId").GetString());
                Assert.Equal("INTERRUPTED", failed.GetProperty("error").GetProperty("code").GetString());
                Assert.Equal("generate", failed.GetProperty("error").GetProperty("phase").GetString());
                Assert.False(failed.GetProperty("error").GetProperty("details").TryGetProperty("reason", out _), "a crash is not a shutdown");
                Assert.Equal(startedAt.ToUnixTimeMilliseconds(), failed.GetProperty("error").GetProperty("details").GetProperty("startedAt").GetInt64());
                await alice.BarrierAsync();
                var later = alice.DrainAll().Where(EventStream.IsEnvelope).ToList();
                Assert.True(!later.Any(e => e.Name == "build:failed"), "reported again:\n" + EventStream.Describe(replayed.Concat(later)));
                await BuildApi.StartAsync(second, "shop-crashed", speed: FakePacing.Speed);
            }
            finally
            {
                await StopAsync(second);
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var file in new[] { path, path + "-wal", path + "-shm" })
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>Stops a gateway gracefully, ignoring the sqlite store's known double dispose.</summary>
    private static async Task StopAsync(TestGateway gateway)
    {
        await gateway.StopAsync();
        try
        {
            await gateway.DisposeAsync();
        }
        catch (ObjectDisposedException)
        {
            // reported by DecisionTests.Sqlite_store_gateway_shuts_down_cleanly
        }
    }
}
