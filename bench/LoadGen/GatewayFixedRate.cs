using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;

using LoadGen;

/// <summary>
/// Scenario 5's fixed-rate phase (the issue 13 bar: p99 publish → delivery at 2 000 events/s over
/// 1 000 projects): single events POSTed at a fixed aggregate rate on an absolute timetable.
/// </summary>
internal static partial class Commands
{
    /// <summary>A seed-shaped agent:status:update whose payload carries seq, burstId and sentAt (epoch ms).</summary>
    private static string GatewayEvent(int seq, int burstId, double sentAt) =>
        $"{{\"type\":\"agent:status:update\",\"payload\":{{\"agentId\":\"agent-uuid\",\"agentType\":\"ui\",\"status\":\"working\",\"currentTask\":\"Generating UI layout for Dashboard page\",\"progress\":65,\"message\":\"Selected 5 components from library\",\"seq\":{seq},\"burstId\":\"{burstId}\",\"sentAt\":{sentAt.ToString("R", CultureInfo.InvariantCulture)}}}}}";

    /// <summary>
    /// Event k of the run (k = 0 .. perProject·projects − 1) is due at t0 + k/rate, goes to project
    /// k mod projects with seq k div projects, and carries as sentAt its scheduled time (not the
    /// time it was sent): a late send, a queued request or a slow answer is inside the measured
    /// latency (no coordinated omission). Sends are not held back by earlier answers, except that
    /// one project's events are POSTed one after the other (the next once the previous is
    /// answered) so that each room's order is defined. The sender wakes about every millisecond
    /// and sends what is due; sends still unanswered <paramref name="drain"/> after the last
    /// scheduled time are cancelled and counted as unanswered.
    /// </summary>
    private static JsonObject FixedRate(Engine engine, CpuMeter cpu, IReadOnlyList<Conn> targets, string url, string apiKey, int projects, int rate, int seconds, TimeSpan drain, TimeSpan idle, int burstId)
    {
        // a whole number of events per project, so that every viewer expects the same count
        var perProject = Math.Max(1, (int)Math.Round((double)rate * seconds / projects));
        var total = perProject * projects;
        var accepted = 0;
        var rejected = 0;
        var unanswered = 0;
        string? firstRejection = null;
        string? firstFailure = null;
        var ack = new Histogram();
        // LOADGEN_FIXED_DUMP=FILE: one line per accepted POST, "<scheduled s from start> <202 latency ms>",
        // to line the stalls up with a trace of the server (docs/benchmarks.md); kept under the lock of ack
        var dumpPath = Environment.GetEnvironmentVariable("LOADGEN_FIXED_DUMP");
        List<(double Due, double Latency)>? answers = dumpPath is null ? null : [];
        var lagMaxUs = 0L;
        long lastAnswerTs = 0;
        long t0 = 0;
        var sendSeconds = 0.0;
        var scheduledSeconds = total / (double)rate;

        async Task PostAsync(Task previous, int project, int seq, double sentAt, long dueTs, CancellationToken ct)
        {
            await previous.ConfigureAwait(false);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"{url}/api/projects/bench-{project}/events")
                {
                    Content = new StringContent(GatewayEvent(seq, burstId, sentAt), System.Text.Encoding.UTF8, "application/json"),
                };
                request.Headers.Add("X-Api-Key", apiKey);
                using var response = await s_http.SendAsync(request, ct).ConfigureAwait(false);
                var now = Stopwatch.GetTimestamp();
                if (response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref accepted);
                    lock (ack)
                    {
                        ack.Record((long)(Clock.Seconds(dueTs, now) * 1e6));
                        answers?.Add((Clock.Seconds(t0, dueTs), Clock.Seconds(dueTs, now)));
                        lastAnswerTs = Math.Max(lastAnswerTs, now);
                    }
                }
                else
                {
                    Interlocked.Increment(ref rejected);
                    var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                    Interlocked.CompareExchange(ref firstRejection, $"{(int)response.StatusCode} {text[..Math.Min(200, text.Length)]}", null);
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                Interlocked.Increment(ref unanswered);
                Interlocked.CompareExchange(ref firstFailure, e.Message, null);
            }
        }

        // the timetable runs on a thread of its own; the answers come back on the pool
        Task<string> Run() => Task.Factory.StartNew(() =>
        {
            var chains = new Task[projects];
            Array.Fill(chains, Task.CompletedTask);
            var wall0 = Clock.NowMs();
            t0 = Stopwatch.GetTimestamp();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(scheduledSeconds) + drain);
            var perEvent = Stopwatch.Frequency / (double)rate;
            for (var k = 0; k < total; k++)
            {
                var due = t0 + (long)(k * perEvent);
                while (Stopwatch.GetTimestamp() < due)
                {
                    Thread.Sleep(1);
                }

                lagMaxUs = Math.Max(lagMaxUs, (long)(Clock.Seconds(due, Stopwatch.GetTimestamp()) * 1e6));
                var project = k % projects;
                chains[project] = PostAsync(chains[project], project, k / projects, wall0 + (k * 1000.0 / rate), due, cts.Token);
            }

            sendSeconds = Clock.Seconds(t0, Stopwatch.GetTimestamp());
            Task.WaitAll(chains);
            return "{}";
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        var m = Burst.Measure(engine, cpu, targets, perProject, burstId, Run, idle, TimeSpan.FromSeconds(scheduledSeconds) + drain + idle + TimeSpan.FromSeconds(5));
        if (dumpPath is not null && answers is not null)
        {
            File.WriteAllLines(dumpPath, answers.OrderBy(a => a.Due).Select(a => string.Create(CultureInfo.InvariantCulture, $"{a.Due:F4} {a.Latency * 1000:F2}")));
        }
        m.Remove("trigger");
        var answeredSeconds = lastAnswerTs > t0 ? Clock.Seconds(t0, lastAnswerTs) : 0;
        m["projects"] = projects;
        m["clientsPerProject"] = targets.Count / Math.Max(1, projects);
        m["offeredRate"] = rate;
        m["offeredSeconds"] = seconds;
        m["scheduledSeconds"] = Math.Round(scheduledSeconds, 3);
        m["posted"] = total;
        m["accepted"] = accepted;
        m["rejected"] = rejected;
        m["unanswered"] = unanswered;
        m["firstRejection"] = firstRejection;
        m["firstFailure"] = firstFailure;
        m["sendSeconds"] = Math.Round(sendSeconds, 3);
        m["senderLagMaxMs"] = Math.Round(lagMaxUs / 1000.0, 3);
        m["answeredSeconds"] = Math.Round(answeredSeconds, 3);
        // events accepted per second, from the first scheduled send to the last 202
        m["achievedPerSec"] = answeredSeconds > 0 ? Math.Round(accepted / answeredSeconds) : 0;
        m["acceptP50Ms"] = ack.Count > 0 ? Math.Round(ack.Quantile(0.5) / 1000, 3) : null;
        m["acceptP99Ms"] = ack.Count > 0 ? Math.Round(ack.Quantile(0.99) / 1000, 3) : null;
        return m;
    }

    /// <summary>
    /// The same timetable as <see cref="FixedRate"/> run inside the gateway's process: GatewayBench's
    /// <c>/bench/publish?rate=R</c> publishes through <c>EventPublisher</c>, each event stamped
    /// with its scheduled time as sentAt.
    /// </summary>
    private static JsonObject FixedRateInProcess(Engine engine, CpuMeter cpu, IReadOnlyList<Conn> targets, string url, string apiKey, int projects, int rate, int seconds, TimeSpan drain, TimeSpan idle, int burstId)
    {
        var perProject = Math.Max(1, (int)Math.Round((double)rate * seconds / projects));
        var scheduledSeconds = perProject * projects / (double)rate;
        var m = Burst.Measure(engine, cpu, targets, perProject, burstId, () =>
            BenchPublishAsync(url, apiKey, $"prefix=bench-&projects={projects}&events={perProject}&rate={rate}&drain={(int)drain.TotalSeconds}&burstId={burstId}"), idle, TimeSpan.FromSeconds(scheduledSeconds) + drain + idle + TimeSpan.FromSeconds(5));
        var answer = m["trigger"];
        m.Remove("trigger");
        m["projects"] = projects;
        m["clientsPerProject"] = targets.Count / Math.Max(1, projects);
        m["offeredRate"] = rate;
        m["offeredSeconds"] = seconds;
        m["scheduledSeconds"] = Math.Round(scheduledSeconds, 3);
        m["posted"] = perProject * projects;
        m["accepted"] = Count(answer?["published"]);
        m["rejected"] = Count(answer?["rejected"]);
        m["unanswered"] = answer is null ? perProject * projects : Count(answer["unanswered"]);
        m["firstRejection"] = answer?["firstRejection"]?.DeepClone();
        m["firstFailure"] = m["triggerError"]?.DeepClone();
        m["sendSeconds"] = Count(answer?["sendSeconds"]) is { } s ? Math.Round(s, 3) : null;
        m["senderLagMaxMs"] = Count(answer?["senderLagMaxMs"]);
        m["answeredSeconds"] = Count(answer?["seconds"]) is { } a ? Math.Round(a, 3) : null;
        m["achievedPerSec"] = Count(answer?["publishesPerSec"]);
        return m;
    }
}
