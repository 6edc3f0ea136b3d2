using System.Text.Json;
using Builder.Tests.Infrastructure;
using Builder.Tests.Runner;
using Cluster.Tests;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests.Cluster;

/// <summary>
/// Build leases on the gateway's clock (a fake one shared by two in-process cluster nodes on one
/// real redis-server): the running node renews its build's lease as time passes, so no node ends
/// it; when that node stops gracefully it reports the build build:failed INTERRUPTED itself and
/// gives the lease back, and no other node reports it again. (A node that dies without stopping,
/// whose lease runs out: Cluster.Tests, kill -9.)
/// </summary>
public sealed class ClusterBuildLeaseTests
{
    private const int LeaseSeconds = 3;

    private static Task<TestGateway> NodeAsync(RedisServer redis, FakeTimeProvider time) =>
        TestGateway.StartAsync(
            s =>
            {
                s.Remove("Builder:Store:Provider");
                s["Builder:Redis:Configuration"] = redis.Configuration;
                s["Builder:Heartbeat:IntervalSeconds"] = "100000";
                s["Builder:Runner:BuildLeaseSeconds"] = LeaseSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            },
            time);

    [Fact]
    public async Task A_renewed_lease_keeps_the_build_and_a_node_stopping_gracefully_ends_it_once_and_releases_the_lease()
    {
        await using var redis = await RedisServer.StartAsync();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var nodeA = await NodeAsync(redis, time);
        await using var nodeB = await NodeAsync(redis, time);
        await using var bob = nodeB.Client(nodeB.Token("bob", ["lease-build"]));
        await bob.ConnectAsync();
        await bob.JoinAsync("lease-build");
        var db = redis.Connection.GetDatabase();
        string buildId;
        try
        {
            // a slow build (its agents work by the system clock): still in its first phase throughout
            buildId = await BuildApi.StartAsync(nodeA, "lease-build", speed: 1);
            var started = await EventStream.ReadUntilAsync(bob, "build:started");
            Assert.Equal(buildId, started[^1].Payload().GetProperty("buildId").GetString());
            var member = "lease-build " + buildId;

            // two lease times pass, a third of a lease at a time: node A renews, node B sweeps, nothing ends
            for (var step = 0; step < 6; step++)
            {
                time.Advance(TimeSpan.FromSeconds(LeaseSeconds / 3.0));
                var expected = (time.GetUtcNow() + TimeSpan.FromSeconds(LeaseSeconds)).ToUnixTimeMilliseconds();
                await Deadline.UntilAsync(async () => await db.SortedSetScoreAsync("builder:builds:leases", member) >= expected, TestGateway.Wait, $"the renewal at step {step}");
            }

            await bob.BarrierAsync();
            Assert.Equal(0, bob.Pending("build:failed"));
        }
        finally
        {
            // node A stops gracefully
            await nodeA.DisposeAsync();
        }

        // it reported its build interrupted as it stopped (not a lease time later: the clock has not
        // moved) and gave the lease back
        var events = await EventStream.ReadUntilAsync(bob, "build:failed");
        var failed = events[^1].Payload();
        Assert.Equal(buildId, failed.GetProperty("buildId").GetString());
        Assert.Equal("INTERRUPTED", failed.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("shutdown", failed.GetProperty("error").GetProperty("details").GetProperty("reason").GetString());
        Assert.Equal(JsonValueKind.Array, failed.GetProperty("error").GetProperty("suggestions").ValueKind);
        Assert.Null(await db.SortedSetScoreAsync("builder:builds:leases", "lease-build " + buildId));
        Assert.False(await db.KeyExistsAsync("builder:build:project:lease-build"), "node A kept the project's hold");

        // once, however long the sweeps go on; and the project takes a new build on node B
        time.Advance(TimeSpan.FromSeconds(LeaseSeconds * 3));
        await nodeB.PublishAsync("lease-build", "agent:status:update", new { agentId = "agent-marker", agentType = "ui", status = "idle" });
        await EventStream.ReadUntilAsync(bob, e => e.Name == "agent:status:update" && e.Payload().GetProperty("agentId").GetString() == "agent-marker", events);
        Assert.Single(events, e => e.Name == "build:failed");
        var next = await BuildApi.StartAsync(nodeB, "lease-build", speed: 1);
        Assert.NotEqual(buildId, next);
    }
}
