// The gateway as scenario (5) of the end-to-end benchmark drives it (bench/run.sh): the whole
// src/Builder.Gateway application, configured as usual, plus two endpoints that run inside its
// process, behind the same producer credential as the HTTP API:
//   GET /bench/publish?prefix=P&projects=N&events=E&producers=W&burstId=I
//       W in-process producers publish through EventPublisher (the API the build runner and any
//       agent hosted in the gateway use): project P{p} belongs to producer p % W, which publishes
//       seq 0..E-1 to each of its projects in order, a seed-shaped agent:status:update whose
//       payload carries seq, burstId and sentAt (epoch ms, stamped just before the call).
//       Answers JSON when every publication has returned (logged and handed to the room).
//       With shard=K&shards=S (the cluster benchmark: one call per node), only the projects p with
//       p % S == K are published, by W producers of this node.
//       With batch=B (default 1) each call publishes B consecutive events of one project through
//       EventPublisher.PublishBatchAsync.
//       With rate=R (single events), the fixed-rate form: events·projects events on a timetable of
//       R per second, round-robin over the projects, sentAt the scheduled time (FixedRateAsync);
//       drain=D (default 10) seconds after the last scheduled one, unreturned calls are cancelled.
//   POST /bench/noop/{projectId}/events
//       the ceiling of the HTTP layer: reads the body and answers 202, nothing else.
//   GET /bench/log?prefix=P&projects=N
//       reads every project's log back: events kept, last seq, and projects whose seqs are not
//       1..last without a gap.
// Usage: dotnet bench/GatewayBench/bin/Release/net10.0/GatewayBench.dll --urls http://127.0.0.1:N
//        (with the gateway's configuration: Builder__Ingest__ApiKeys__0, Builder__Jwt__Secret, ...)
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Builder.Events;
using Builder.Gateway;

var app = GatewayApp.Build(args);

// both endpoints take the producer credential of the HTTP API (X-Api-Key or a service JWT)
var bench = app.MapGroup("/bench").AddEndpointFilter(async (context, next) =>
{
    var check = await context.HttpContext.RequestServices.GetRequiredService<ProducerAuth>().CheckAsync(context.HttpContext.Request, null);
    return check.Allowed
        ? await next(context)
        : Results.Json(new { error = new { code = check.Code, message = check.Message } }, statusCode: check.Status);
});

bench.MapGet("/publish", async (HttpRequest request, EventPublisher publisher, IEventLog log) =>
{
    var commits0 = (log as SqliteStore)?.Commits;
    var q = request.Query;
    var (prefix, projects) = Scope(q);
    var events = Math.Clamp(Num(q["events"].FirstOrDefault(), 10), 0, 1_000_000);
    var producers = Math.Clamp(Num(q["producers"].FirstOrDefault(), 32), 1, 4096);
    var burstId = Num(q["burstId"].FirstOrDefault(), 0);
    var shards = Math.Clamp(Num(q["shards"].FirstOrDefault(), 1), 1, 1024);
    var shard = Math.Clamp(Num(q["shard"].FirstOrDefault(), 0), 0, shards - 1);
    var batch = Math.Clamp(Num(q["batch"].FirstOrDefault(), 1), 1, 1000);
    var rate = Math.Clamp(Num(q["rate"].FirstOrDefault(), 0), 0, 1_000_000);
    if (rate > 0)
    {
        if ((long)events * projects > 10_000_000)
        {
            return Results.Json(new { error = new { code = "BAD_REQUEST", message = "rate: events × projects must be at most 10 000 000" } }, statusCode: 400);
        }

        var drain = TimeSpan.FromSeconds(Math.Clamp(Num(q["drain"].FirstOrDefault(), 10), 0, 600));
        return Results.Json(await FixedRateAsync(publisher, prefix, projects, events, rate, burstId, drain));
    }

    var published = 0;
    var rejected = 0;
    string? firstRejection = null;
    var watch = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, producers).Select(w => Task.Run(async () =>
    {
        for (var seq = 0; seq < events; seq += batch)
        {
            for (var p = shard + (w * shards); p < projects; p += producers * shards)
            {
                var projectId = prefix + p.ToString(CultureInfo.InvariantCulture);
                var n = Math.Min(batch, events - seq);
                IReadOnlyList<IndexedFieldError> errors;
                if (batch == 1)
                {
                    var payload = new BenchStatus("agent-uuid", "ui", "working", "Generating UI layout for Dashboard page", 65, "Selected 5 components from library", seq, burstId, NowMs());
                    var result = await publisher.PublishAsync(projectId, "agent:status:update", payload);
                    errors = result.Ok ? [] : result.Errors.Select(e => new IndexedFieldError(0, e.Field, e.Message)).ToList();
                }
                else
                {
                    var drafts = new EventDraft[n];
                    var sentAt = NowMs();
                    for (var i = 0; i < n; i++)
                    {
                        var payload = new BenchStatus("agent-uuid", "ui", "working", "Generating UI layout for Dashboard page", 65, "Selected 5 components from library", seq + i, burstId, sentAt);
                        drafts[i] = new EventDraft("agent:status:update", JsonSerializer.SerializeToElement(payload, JsonSerializerOptions.Web));
                    }

                    var result = await publisher.PublishBatchAsync(projectId, drafts);
                    errors = result.Errors;
                }

                if (errors.Count == 0)
                {
                    Interlocked.Add(ref published, n);
                }
                else
                {
                    Interlocked.Add(ref rejected, n);
                    Interlocked.CompareExchange(ref firstRejection, string.Join("; ", errors.Select(e => $"{e.Field} {e.Message}")), null);
                }
            }
        }
    }))).ConfigureAwait(false);
    var seconds = watch.Elapsed.TotalSeconds;
    var commits = (log as SqliteStore)?.Commits - commits0;
    return Results.Json(new { published, rejected, firstRejection, seconds, publishesPerSec = seconds > 0 ? Math.Round(published / seconds) : 0, commits });
});

// the ceiling of the HTTP layer: the producers' POST (same credential check, same body), read
// whole and answered 202 with a small JSON body, and nothing else
bench.MapPost("/noop/{projectId}/events", async (string projectId, HttpRequest request) =>
{
    var buffer = new byte[8192];
    long total = 0;
    int read;
    while ((read = await request.Body.ReadAsync(buffer, request.HttpContext.RequestAborted)) > 0)
    {
        total += read;
    }

    return Results.Json(new { projectId, seq = total, accepted = true }, statusCode: 202);
});

bench.MapGet("/log", async (HttpRequest request, IEventLog log) =>
{
    var (prefix, projects) = Scope(request.Query);
    long events = 0;
    long minLast = long.MaxValue;
    long maxLast = 0;
    var withGaps = new List<string>();
    for (var p = 0; p < projects; p++)
    {
        var projectId = prefix + p.ToString(CultureInfo.InvariantCulture);
        var last = await log.LatestSeqAsync(projectId);
        long expect = 1;
        while (expect <= last)
        {
            var page = await log.ReadAsync(projectId, expect - 1, 1000);
            if (page.Count == 0)
            {
                break;
            }

            foreach (var e in page)
            {
                if (e.Seq != expect)
                {
                    withGaps.Add(projectId);
                    expect = last + 1;
                    break;
                }

                expect++;
                events++;
            }
        }

        if (expect <= last && (withGaps.Count == 0 || withGaps[^1] != projectId))
        {
            withGaps.Add(projectId);
        }

        minLast = Math.Min(minLast, last);
        maxLast = Math.Max(maxLast, last);
    }

    return Results.Json(new { projects, events, minLastSeq = minLast, maxLastSeq = maxLast, projectsWithGaps = withGaps.Count, firstWithGaps = withGaps.Take(5) });
});

app.Run();

static (string Prefix, int Projects) Scope(IQueryCollection q) =>
    (q["prefix"].FirstOrDefault() ?? "bench-", Math.Clamp(Num(q["projects"].FirstOrDefault(), 1000), 1, 1_000_000));

// the fixed-rate form of /bench/publish (rate=R): event k of events·projects is due at t0 + k/R,
// goes to project k mod projects with seq k div projects and carries its scheduled time as sentAt
// (a late call or a slow publication counts in the latency: no coordinated omission); one
// project's events are published one after the other, the others are not held back. A thread of
// its own keeps the timetable, waking about every millisecond; publications not returned `drain`
// after the last scheduled time are cancelled and counted as unanswered.
static async Task<object> FixedRateAsync(EventPublisher publisher, string prefix, int projects, int events, int rate, int burstId, TimeSpan drain)
{
    var total = events * projects;
    var published = 0;
    var rejected = 0;
    var unanswered = 0;
    string? firstRejection = null;
    var gate = new object();
    long lastTs = 0;
    long lagMaxTicks = 0;
    var chains = new Task[projects];
    Array.Fill(chains, Task.CompletedTask);
    var scheduled = total / (double)rate;
    using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(scheduled) + drain);
    var wall0 = NowMs();
    var t0 = Stopwatch.GetTimestamp();

    async Task PublishAsync(Task previous, int project, int seq, double sentAt, CancellationToken ct)
    {
        await previous.ConfigureAwait(false);
        try
        {
            var payload = new BenchStatus("agent-uuid", "ui", "working", "Generating UI layout for Dashboard page", 65, "Selected 5 components from library", seq, burstId, sentAt);
            var result = await publisher.PublishAsync(prefix + project.ToString(CultureInfo.InvariantCulture), "agent:status:update", payload, ct).ConfigureAwait(false);
            if (result.Ok)
            {
                Interlocked.Increment(ref published);
                var now = Stopwatch.GetTimestamp();
                lock (gate)
                {
                    lastTs = Math.Max(lastTs, now);
                }
            }
            else
            {
                Interlocked.Increment(ref rejected);
                Interlocked.CompareExchange(ref firstRejection, string.Join("; ", result.Errors.Select(e => $"{e.Field} {e.Message}")), null);
            }
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref unanswered);
        }
    }

    await Task.Factory.StartNew(() =>
    {
        var perEvent = Stopwatch.Frequency / (double)rate;
        for (var k = 0; k < total; k++)
        {
            var due = t0 + (long)(k * perEvent);
            while (Stopwatch.GetTimestamp() < due)
            {
                Thread.Sleep(1);
            }

            lagMaxTicks = Math.Max(lagMaxTicks, Stopwatch.GetTimestamp() - due);
            var project = k % projects;
            chains[project] = PublishAsync(chains[project], project, k / projects, wall0 + (k * 1000.0 / rate), cts.Token);
        }
    }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).ConfigureAwait(false);
    var sendSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
    await Task.WhenAll(chains).ConfigureAwait(false);
    var seconds = lastTs > t0 ? Stopwatch.GetElapsedTime(t0, lastTs).TotalSeconds : 0;
    return new
    {
        published,
        rejected,
        unanswered,
        firstRejection,
        rate,
        scheduledSeconds = scheduled,
        sendSeconds,
        senderLagMaxMs = Math.Round(lagMaxTicks * 1000.0 / Stopwatch.Frequency, 3),
        seconds,
        publishesPerSec = seconds > 0 ? Math.Round(published / seconds) : 0,
    };
}

static int Num(string? s, int fallback) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;

static double NowMs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerMillisecond;

internal sealed record BenchStatus(string AgentId, string AgentType, string Status, string CurrentTask, int Progress, string Message, int Seq, int BurstId, double SentAt);
