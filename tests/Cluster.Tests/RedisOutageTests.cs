using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using StackExchange.Redis;

namespace Cluster.Tests;

/// <summary>Redis killed and started again while producers publish on three nodes.</summary>
public sealed class RedisOutageTests
{
    private sealed record Attempt(int Producer, HttpStatusCode Status, string Body, string? RetryAfter);

    [Fact]
    public async Task No_acknowledged_event_is_lost_the_others_are_told_503_with_Retry_After_and_viewers_stay_connected()
    {
        await using var redis = await RedisProcess.StartAsync();
        var nodes = await GatewayNode.StartClusterAsync(redis.Configuration);
        var viewers = new List<Viewer>();
        using var stop = new CancellationTokenSource();
        try
        {
            const string project = "outage";
            for (var n = 0; n < nodes.Length; n++)
            {
                var viewer = new Viewer(nodes[n].Url, GatewayNode.Token($"viewer-{n}", project));
                viewers.Add(viewer);
                await viewer.ConnectAsync();
                await viewer.JoinAsync(project);
            }

            var attempts = new ConcurrentQueue<Attempt>();
            var producers = nodes.Select((node, p) => Task.Run(async () =>
            {
                // bounded: at most 5000 attempts each, and stopped by the test
                for (var i = 0; i < 5000 && !stop.IsCancellationRequested; i++)
                {
                    var payload = JsonSerializer.Serialize(new { agentId = $"agent-{p}", agentType = "backend", status = "working", message = $"p{p}-{i}" });
                    using var response = await node.PublishAsync(project, "agent:status:update", payload);
                    var body = await response.Content.ReadAsStringAsync();
                    attempts.Enqueue(new Attempt(p, response.StatusCode, body, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                    if (response.StatusCode != HttpStatusCode.Accepted)
                    {
                        // as a producer told to retry later would, but sooner: the test wants many attempts in the outage
                        await Task.Delay(20);
                    }
                }
            })).ToArray();

            int Count(HttpStatusCode status) => attempts.Count(a => a.Status == status);
            var wait = TimeSpan.FromSeconds(60);
            await Deadline.UntilAsync(() => Count(HttpStatusCode.Accepted) >= 60, wait, "60 events accepted before the outage");

            await redis.KillAsync();
            await Deadline.UntilAsync(() => nodes.Select((_, p) => attempts.Count(a => a.Producer == p && a.Status == HttpStatusCode.ServiceUnavailable)).Min() >= 3, wait, "every producer told 503");
            foreach (var node in nodes)
            {
                using var ready = await node.Http.GetAsync("readyz");
                Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
                Assert.Contains("STORE_UNAVAILABLE", await ready.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            var acceptedBefore = Count(HttpStatusCode.Accepted);
            await redis.RestartAsync();
            await Deadline.UntilAsync(() => Count(HttpStatusCode.Accepted) >= acceptedBefore + 60, wait, "60 more events accepted after Redis returned");
            await stop.CancelAsync();
            await Task.WhenAll(producers);
            foreach (var node in nodes)
            {
                await Deadline.UntilAsync(async () => (await node.Http.GetAsync("readyz")).IsSuccessStatusCode, wait, "/readyz ready again");
            }

            // every answer is 202 or a 503 that says why and when to retry
            foreach (var a in attempts)
            {
                Assert.True(a.Status is HttpStatusCode.Accepted or HttpStatusCode.ServiceUnavailable, $"{a.Status}: {a.Body}");
                if (a.Status == HttpStatusCode.ServiceUnavailable)
                {
                    Assert.Equal("2", a.RetryAfter);
                    Assert.Contains("STORE_UNAVAILABLE", a.Body, StringComparison.Ordinal);
                    Assert.Contains("Redis", a.Body, StringComparison.Ordinal);
                }
            }

            // the log read back: seq 1..n without a gap, and every acknowledged event in it
            await using var connection = await redis.ConnectAsync();
            var entries = await connection.GetDatabase().StreamRangeAsync("builder:{" + project + "}:log", "-", "+");
            var logged = entries.Select(e => JsonDocument.Parse((string)e.Values[0].Value!).RootElement).ToList();
            Assert.Equal(Enumerable.Range(1, logged.Count).Select(i => (long)i), logged.Select(e => e.GetProperty("seq").GetInt64()));
            var loggedIds = logged.Select(e => e.GetProperty("eventId").GetString()).ToHashSet();
            var acknowledged = attempts.Where(a => a.Status == HttpStatusCode.Accepted).Select(a => JsonDocument.Parse(a.Body).RootElement).ToList();
            Assert.True(acknowledged.Count >= 120);
            Assert.All(acknowledged, a => Assert.Contains(a.GetProperty("eventId").GetString(), loggedIds));
            Assert.Equal(acknowledged.Count, acknowledged.Select(a => a.GetProperty("seq").GetInt64()).Distinct().Count());

            // the viewers stayed connected and got the whole log, once, in order
            foreach (var viewer in viewers)
            {
                Assert.True(viewer.Connected);
                await Deadline.UntilAsync(() => viewer.ProjectEvents(project).Count >= logged.Count, wait, "the whole log at every viewer");
                await viewer.BarrierAsync();
                Assert.Equal(Enumerable.Range(1, logged.Count).Select(i => (long)i), viewer.ProjectEvents(project).Select(e => e.GetProperty("seq").GetInt64()));
            }
        }
        finally
        {
            await stop.CancelAsync();
            await ClusterLogTests.DisposeAllAsync(viewers, nodes);
        }
    }
}
