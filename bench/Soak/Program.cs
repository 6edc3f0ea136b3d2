using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Abuse.Tests;

// bench/Soak: viewers connect, join (resuming with lastSeq), receive, drop, over and over, while a
// simulated build runs in every project (the decisions it asks are answered by a viewer). Samples
// the gateway's /metrics every --sample seconds; writes a CSV and a summary.
//
//   dotnet run -c Release --project bench/Soak -- --minutes 60 --viewers 300 --projects 10 --out bench/results/soak
var minutes = 60.0;
var viewers = 300;
var projects = 10;
var sampleSeconds = 10;
var outDir = "bench/results/soak";
for (var i = 0; i < args.Length - 1; i += 2)
{
    switch (args[i])
    {
        case "--minutes": minutes = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--viewers": viewers = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--projects": projects = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--sample": sampleSeconds = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
        case "--out": outDir = args[i + 1]; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
    }
}

Directory.CreateDirectory(outDir);
var dataDir = Path.Combine(Path.GetTempPath(), "builder-soak-" + Environment.ProcessId);
Directory.CreateDirectory(dataDir);
await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
{
    ["Builder:Store:Provider"] = "sqlite",
    ["Builder:Store:Path"] = Path.Combine(dataDir, "builder.db"),
    ["Builder:Limits:MaxConnectionsPerAddress"] = "100000",
    ["Builder:Limits:MaxHandshakesPerAddress"] = "100000",
});
Console.WriteLine($"gateway on port {gateway.Port}; {viewers} viewers on {projects} projects for {minutes} min");

var end = Stopwatch.StartNew();
var duration = TimeSpan.FromMinutes(minutes);
long lives = 0, connectErrors = 0, events = 0, gaps = 0, duplicates = 0, decisionsAnswered = 0, buildsStarted = 0, buildsCompleted = 0;
var rng = new Random(42);
string Project(int v) => $"soak-{v % projects}";

// builds: start one wherever none runs (409 while one does)
var builds = Task.Run(async () =>
{
    while (end.Elapsed < duration)
    {
        for (var p = 0; p < projects; p++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/soak-{p}/builds")
            {
                Content = new StringContent("{\"requirements\":\"An online shop with users, products and orders\",\"simulate\":true,\"deploy\":true,\"speed\":20}", Encoding.UTF8, "application/json"),
            };
            request.Headers.Add("X-Api-Key", GatewayProcess.ApiKey);
            using var response = await gateway.Http.SendAsync(request);
            if (response.StatusCode == HttpStatusCode.Accepted)
            {
                Interlocked.Increment(ref buildsStarted);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(5));
    }
});

// viewers: each has one identity and a lastSeq across its lives
var churn = Enumerable.Range(0, viewers).Select(v => Task.Run(async () =>
{
    var token = GatewayProcess.Token($"soak-viewer-{v}", Project(v));
    long lastSeq = -1;
    var local = new Random(v);
    while (end.Elapsed < duration)
    {
        BuilderRawClient? client = null;
        try
        {
            client = await BuilderRawClient.ConnectAsync(gateway.Port, token);
            client.OnEvent = (c, name, body) =>
            {
                if (name == "build:completed")
                {
                    Interlocked.Increment(ref buildsCompleted);
                }

                if (name == "user:decision:required" && v < projects && body.TryGetProperty("payload", out var payload))
                {
                    var id = payload.GetProperty("decisionId").GetString();
                    var option = payload.GetProperty("options")[0].GetProperty("id").GetString();
                    _ = c.EmitAsync("user:decision:response", new { decisionId = id, selectedOptionId = option });
                    Interlocked.Increment(ref decisionsAnswered);
                }
            };
            object join = lastSeq < 0 ? new { projectId = Project(v) } : new { projectId = Project(v), lastSeq };
            var ack = await client.EmitWithAckAsync("join-project", join, TimeSpan.FromSeconds(30));
            var first = lastSeq;
            await Task.Delay(TimeSpan.FromSeconds(2 + local.NextDouble() * 8));
            var seqs = client.SeqsSnapshot();
            Interlocked.Add(ref events, seqs.Count);
            var expected = first < 0 ? (seqs.Count > 0 ? seqs[0] : 0) : first + 1;
            foreach (var s in seqs)
            {
                if (s < expected)
                {
                    Interlocked.Increment(ref duplicates);
                }
                else if (s > expected)
                {
                    Interlocked.Increment(ref gaps);
                }

                expected = Math.Max(expected, s + 1);
            }

            if (seqs.Count > 0)
            {
                lastSeq = seqs[^1];
            }
            else if (first < 0 && ack.TryGetProperty("seq", out var joinedSeq))
            {
                lastSeq = joinedSeq.GetInt64();
            }

            Interlocked.Increment(ref lives);
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or TimeoutException or System.Net.Sockets.SocketException)
        {
            Interlocked.Increment(ref connectErrors);
            Console.Error.WriteLine($"viewer {v}: {ex.Message}");
            await Task.Delay(500);
        }
        finally
        {
            if (client is not null)
            {
                await client.DisposeAsync();
            }
        }
    }
})).ToArray();

var csv = new StringBuilder("seconds,rss_mb,gc_heap_mb,sessions,sockets,lives,events,connect_errors,gaps,duplicates,builds_started,builds_completed\n");
var samples = new List<(double Seconds, double Rss, double Heap, double Sessions)>();
while (end.Elapsed < duration)
{
    await Task.Delay(TimeSpan.FromSeconds(sampleSeconds));
    var m = await gateway.MetricsAsync();
    var line = string.Create(CultureInfo.InvariantCulture, $"{end.Elapsed.TotalSeconds:0},{m["process_resident_memory_bytes"] / 1e6:0.0},{m["dotnet_gc_heap_bytes"] / 1e6:0.0},{m["builder_engine_sessions"]},{m["builder_connected_sockets"]},{lives},{events},{connectErrors},{gaps},{duplicates},{buildsStarted},{buildsCompleted}");
    csv.Append(line).Append('\n');
    samples.Add((end.Elapsed.TotalSeconds, m["process_resident_memory_bytes"] / 1e6, m["dotnet_gc_heap_bytes"] / 1e6, m["builder_engine_sessions"]));
    Console.WriteLine(line);
    await File.WriteAllTextAsync(Path.Combine(outDir, "soak.csv"), csv.ToString());
    if (gateway.HasExited)
    {
        Console.Error.WriteLine("the gateway exited:\n" + gateway.Output);
        return 1;
    }
}

await Task.WhenAll(churn);
await builds;
var drained = Stopwatch.StartNew();
while ((await gateway.MetricAsync("builder_engine_sessions")) > 0 && drained.Elapsed < TimeSpan.FromSeconds(120))
{
    await Task.Delay(500);
}

var final = await gateway.MetricsAsync();
var tenth = Math.Max(1, samples.Count / 10);
var early = samples.Take(tenth).Average(s => s.Rss);
var late = samples.TakeLast(tenth).Average(s => s.Rss);
var summary = string.Create(CultureInfo.InvariantCulture, $"""
    # Soak: {minutes} min, {viewers} viewers churning on {projects} projects, a simulated build always running per project

    | figure | value |
    |---|---|
    | viewer lives (connect, join with lastSeq, receive 2-10 s, drop) | {lives} |
    | events received | {events} |
    | connect or join errors | {connectErrors} |
    | seq gaps across a viewer's lives | {gaps} |
    | duplicates | {duplicates} |
    | builds started / completions seen by viewers | {buildsStarted} / {buildsCompleted} |
    | decisions answered | {decisionsAnswered} |
    | RSS, mean of the first tenth of the run | {early:0.0} MB |
    | RSS, mean of the last tenth of the run | {late:0.0} MB |
    | RSS, max | {samples.Max(s => s.Rss):0.0} MB |
    | GC heap, max | {samples.Max(s => s.Heap):0.0} MB |
    | sessions, max | {samples.Max(s => s.Sessions)} |
    | sessions 2 min after the churn stopped | {final["builder_engine_sessions"]} |
    | RSS after the churn stopped | {final["process_resident_memory_bytes"] / 1e6:0.0} MB |

    Samples every {sampleSeconds} s in soak.csv.
    """);
await File.WriteAllTextAsync(Path.Combine(outDir, "soak.md"), summary);
Console.WriteLine(summary);
Directory.Delete(dataDir, recursive: true);
return gaps == 0 && duplicates == 0 && final["builder_engine_sessions"] == 0 ? 0 : 1;
