using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using Builder.Events;

namespace Abuse.Tests;

/// <summary>
/// What a 202 promises (issue 13): the gateway killed with SIGKILL while producers publish (single
/// events and batches, several projects, group-committed), then started again on the same SQLite
/// file: every event that was answered 202 is in the log with the seq it was answered, once; seqs
/// have no gap; the restarted gateway continues after them.
/// </summary>
public sealed class CrashDurabilityTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "builder-crash-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // the system cleans its temp folder
        }
    }

    private static string Event(string tag) =>
        $"{{\"type\":\"agent:status:update\",\"payload\":{{\"agentId\":\"a1\",\"agentType\":\"ui\",\"status\":\"working\",\"progress\":5,\"message\":\"{tag}\"}}}}";

    [Theory]
    [InlineData("normal")]
    [InlineData("full")]
    public async Task Every_event_answered_202_survives_a_kill_9_once(string durability)
    {
        Directory.CreateDirectory(_dir);
        var path = Path.Combine(_dir, "builder.db");
        var settings = new Dictionary<string, string>
        {
            ["Builder:Store:Provider"] = "sqlite",
            ["Builder:Store:Path"] = path,
            ["Builder:Store:Durability"] = durability,
        };
        string[] projects = ["k0", "k1", "k2"];
        var answered = new ConcurrentBag<(string Project, long Seq, string Tag)>();
        var gateway = await GatewayProcess.StartAsync(settings);
        try
        {
            using var stop = new CancellationTokenSource();
            var producers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
            {
                var project = projects[w % projects.Length];
                for (var i = 0; i < 100_000 && !stop.IsCancellationRequested; i++)
                {
                    var batch = i % 3 == 2;
                    var tags = batch ? Enumerable.Range(0, 4).Select(k => $"w{w}-{i}-{k}").ToArray() : [$"w{w}-{i}"];
                    var body = batch ? "[" + string.Join(",", tags.Select(Event)) + "]" : Event(tags[0]);
                    using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{project}/events") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
                    request.Headers.Add("X-Api-Key", GatewayProcess.ApiKey);
                    HttpResponseMessage response;
                    try
                    {
                        response = await gateway.Http.SendAsync(request);
                    }
                    catch (HttpRequestException)
                    {
                        return; // the gateway is gone: this request was never answered
                    }

                    using (response)
                    {
                        if (response.StatusCode != HttpStatusCode.Accepted)
                        {
                            throw new InvalidOperationException($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                        }

                        string text;
                        try
                        {
                            text = await response.Content.ReadAsStringAsync();
                        }
                        catch (HttpRequestException)
                        {
                            return; // the answer was cut: not a 202 the producer could read
                        }

                        var root = JsonDocument.Parse(text).RootElement;
                        var envelopes = root.ValueKind == JsonValueKind.Array ? root.EnumerateArray().ToList() : [root];
                        for (var k = 0; k < tags.Length; k++)
                        {
                            answered.Add((project, envelopes[k].GetProperty("seq").GetInt64(), tags[k]));
                        }
                    }
                }
            })).ToList();

            // kill -9 in the middle of the publishing
            await Deadline.UntilAsync(() => answered.Count >= 300 || producers.Any(p => p.IsFaulted), TimeSpan.FromSeconds(60), "300 events answered 202");
            await gateway.KillAsync();
            await stop.CancelAsync();
            await Task.WhenAll(producers);
        }
        finally
        {
            await gateway.DisposeAsync();
        }

        // started again on the same file: it opens (SQLite recovers the WAL) and continues each project's seq
        var restarted = await GatewayProcess.StartAsync(settings);
        var continued = new Dictionary<string, long>();
        try
        {
            foreach (var p in projects)
            {
                using var response = await restarted.PublishAsync(p, "agent:status:update", "{\"agentId\":\"a1\",\"agentType\":\"ui\",\"status\":\"idle\",\"message\":\"after\"}");
                Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
                continued[p] = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("seq").GetInt64();
            }
        }
        finally
        {
            await restarted.DisposeAsync();
        }

        await using var store = new SqliteStore(path);
        foreach (var p in projects)
        {
            var logged = await store.ReadAsync(p, 0, 1_000_000);
            var last = logged[^1];
            Assert.Equal("after", last.Payload.GetProperty("message").GetString());
            Assert.Equal(continued[p], last.Seq);

            // seqs 1..N without gap or duplicate; each answered tag once, at the seq it was answered
            Assert.Equal(Enumerable.Range(1, logged.Count).Select(i => (long)i), logged.Select(e => e.Seq));
            var bySeq = logged.ToDictionary(e => e.Seq, e => e.Payload.GetProperty("message").GetString());
            Assert.Equal(logged.Count, bySeq.Values.Distinct().Count());
            foreach (var a in answered.Where(a => a.Project == p))
            {
                Assert.True(bySeq.TryGetValue(a.Seq, out var tag) && tag == a.Tag, $"{p}: the event {a.Tag} answered 202 with seq {a.Seq} is not in the log (found {tag ?? "nothing"})");
            }
        }

        Assert.True(answered.Count >= 300, $"{answered.Count} answered");
    }
}
