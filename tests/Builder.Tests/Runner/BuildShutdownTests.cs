using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>A build running when the gateway stops is ended with build:failed INTERRUPTED at the next start.</summary>
public sealed class BuildRestartTests
{
    [Fact]
    public async Task Build_running_at_shutdown_is_reported_interrupted_after_the_restart()
    {
        var path = Path.Combine(Path.GetTempPath(), "builder-runner-tests-" + Guid.NewGuid().ToString("N") + ".db");
        void Sqlite(Dictionary<string, string?> s)
        {
            s["Builder:Store:Provider"] = "sqlite";
            s["Builder:Store:Path"] = path;
            s["Builder:Heartbeat:IntervalSeconds"] = "100000";
        }

        try
        {
            long startedSeq;
            long completedSeq;
            string buildId;
            var first = await TestGateway.StartAsync(Sqlite);
            try
            {
                // a build that completed before the stop: not to be touched by the restart
                await using (var carol = first.Client(first.Token("carol", ["shop-done"])))
                {
                    await carol.ConnectAsync();
                    await carol.JoinAsync("shop-done");
                    await BuildApi.StartAsync(first, "shop-done");
                    var done = await EventStream.RunToEndAsync(carol, answer: "option-1");
                    Assert.True(done[^1].Name == "build:completed", EventStream.Describe(done));
                    completedSeq = done[^1].Seq();
                }

                // a slow build (real time): still in its first phase when the gateway stops
                await using var alice = first.Client(first.Token("alice", ["shop-slow"]));
                await alice.ConnectAsync();
                await alice.JoinAsync("shop-slow");
                buildId = await BuildApi.StartAsync(first, "shop-slow", speed: 1);
                var started = await EventStream.ReadUntilAsync(alice, "build:started");
                startedSeq = started[^1].Seq();
                Assert.Equal(buildId, started[^1].Payload().GetProperty("buildId").GetString());
            }
            finally
            {
                await StopAsync(first);
            }

            long failedSeq;
            var second = await TestGateway.StartAsync(Sqlite);
            try
            {
                // replay from the last event seen
                await using var alice2 = second.Client(second.Token("alice", ["shop-slow"]));
                await alice2.ConnectAsync();
                await alice2.JoinAsync("shop-slow", lastSeq: startedSeq);
                var replayed = await EventStream.ReadUntilAsync(alice2, "build:failed");
                Assert.DoesNotContain(replayed, e => e.Name is "build:completed" or "build:cancelled");
                var error = replayed[^1].Payload().GetProperty("error");
                Assert.Equal(buildId, replayed[^1].Payload().GetProperty("buildId").GetString());
                Assert.Equal("INTERRUPTED", error.GetProperty("code").GetString());
                Assert.Equal("analyze", error.GetProperty("phase").GetString());
                Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
                Assert.NotEmpty(error.GetProperty("suggestions").EnumerateArray());
                failedSeq = replayed[^1].Seq();
                await alice2.BarrierAsync();
                Assert.DoesNotContain(alice2.DrainAll(), e => e.Name == "build:failed");

                // a late joiner's snapshot
                await using var bob = second.Client(second.Token("bob", ["shop-slow"]));
                await bob.ConnectAsync();
                await bob.JoinAsync("shop-slow");
                var build = (await bob.NextAsync("project:snapshot")).GetProperty("build");
                Assert.Equal("failed", build.GetProperty("state").GetString());
                Assert.Equal("INTERRUPTED", build.GetProperty("error").GetProperty("code").GetString());

                // the completed build was not touched
                await using var carol2 = second.Client(second.Token("carol", ["shop-done"]));
                await carol2.ConnectAsync();
                var ack = await carol2.JoinAsync("shop-done", lastSeq: completedSeq);
                Assert.Equal(completedSeq, ack.GetProperty("seq").GetInt64());
                await carol2.BarrierAsync();
                Assert.Equal(0, carol2.Pending("build:failed"));
            }
            finally
            {
                await StopAsync(second);
            }

            // a further restart does not report the interrupted build again, and the project builds again
            var third = await TestGateway.StartAsync(Sqlite);
            try
            {
                await using var alice3 = third.Client(third.Token("alice", ["shop-slow"]));
                await alice3.ConnectAsync();
                var ack = await alice3.JoinAsync("shop-slow", lastSeq: failedSeq);
                Assert.Equal(failedSeq, ack.GetProperty("seq").GetInt64());
                await alice3.BarrierAsync();
                Assert.Equal(0, alice3.Pending("build:failed"));
                await BuildApi.StartAsync(third, "shop-slow");
                await EventStream.ReadUntilAsync(alice3, "build:started");
            }
            finally
            {
                await StopAsync(third);
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

    /// <summary>Stops a sqlite gateway (graceful: its builds stay recorded as running), ignoring the store's known double dispose.</summary>
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
