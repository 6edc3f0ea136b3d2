using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

using LoadGen;

/// <summary>
/// The gateway on several nodes (bench/cluster.sh --gateway, issue #12): the gateway scenario (many
/// projects, JWT clients joined to their project) with the clients spread over every node (client i
/// on node i % N, so the viewers of one project sit on several nodes), producers on every node
/// through the HTTP API (producer w posts to node w % N) and then in-process (each node publishes
/// its share of the projects through EventPublisher), then every project's log read back from the
/// first node. Run against three clustered nodes and against one node with the same load.
/// </summary>
internal static partial class Commands
{
    public static async Task<int> GatewayClusterAsync(Options o)
    {
        var (urls, hosts, pids) = Nodes(o, "http://127.0.0.1:3001");
        var projects = o.Int("projects", 1000);
        var perProject = o.Int("per-project", 10);
        var events = o.Int("events", 10);
        var producers = o.Int("producers", 32);
        var secret = o.Str("jwt-secret") ?? throw new ArgumentException("--jwt-secret is required");
        var apiKey = o.Str("api-key") ?? throw new ArgumentException("--api-key is required");
        var idle = TimeSpan.FromSeconds(o.Int("idle-timeout", 5));
        var max = TimeSpan.FromSeconds(o.Int("max-burst-seconds", 180));
        var clients = projects * perProject;
        var result = Header(o, "gateway-cluster");
        result["mode"] = o.Str("mode", urls.Length > 1 ? "cluster" : "single");
        result["nodes"] = urls.Length;
        foreach (var url in urls)
        {
            await WaitUpAsync(url, "/readyz", TimeSpan.FromSeconds(90));
        }

        var tokens = new string[clients];
        for (var i = 0; i < clients; i++)
        {
            tokens[i] = Jwt.Mint(secret, $"bench-user-{i}", $"bench user {i}");
        }

        using var engine = new Engine(hosts[0].Host, [.. hosts.Select(h => h.Port)], o.Int("threads", DefaultThreads()), o.Int("source-addrs", 1));
        var cpu = new CpuMeter(pids);
        var connect = MeasureConnect(engine, cpu, clients, o.Int("concurrency", 100), 0, TimeSpan.FromSeconds(o.Int("connect-timeout", 180)),
            i => ($"{{\"token\":\"{tokens[i]}\"}}", [$"bench-{i / perProject}"]));
        result["connect"] = connect;
        var ready = (int)connect["ready"]!;
        var failed = (int)connect["failed"]!;
        var label = $"[gateway {result["mode"]}]";
        Console.Error.WriteLine($"{label} connect: {ready}/{clients} ready over {urls.Length} node(s), failed {failed}");
        if (ready == 0)
        {
            result["error"] = "no client connected";
            Write(o, result);
            return 1;
        }

        var targets = engine.All.Where(c => c.State == ConnState.Ready).ToList();
        Thread.Sleep(TimeSpan.FromSeconds(o.Int("settle", 2)));

        // HTTP: project p belongs to producer p % producers, which posts seq 0..events-1 to each of
        // its projects in order, through node (producer % nodes)
        var accepted = 0;
        var rejected = 0;
        string? firstRejection = null;
        var publishWatch = new Stopwatch();
        const int httpBurst = 600;
        var http = Burst.Measure(engine, cpu, targets, events, httpBurst, async () =>
        {
            publishWatch.Start();
            await Task.WhenAll(Enumerable.Range(0, producers).Select(async w =>
            {
                var node = urls[w % urls.Length];
                for (var seq = 0; seq < events; seq++)
                {
                    for (var p = w; p < projects; p += producers)
                    {
                        var sentAt = Clock.NowMs().ToString("R", CultureInfo.InvariantCulture);
                        var body = $"{{\"type\":\"agent:status:update\",\"payload\":{{\"agentId\":\"agent-uuid\",\"agentType\":\"ui\",\"status\":\"working\",\"currentTask\":\"Generating UI layout for Dashboard page\",\"progress\":65,\"message\":\"Selected 5 components from library\",\"seq\":{seq},\"burstId\":\"{httpBurst}\",\"sentAt\":{sentAt}}}}}";
                        using var request = new HttpRequestMessage(HttpMethod.Post, $"{node}/api/projects/bench-{p}/events")
                        {
                            Content = new StringContent(body, Encoding.UTF8, "application/json"),
                        };
                        request.Headers.Add("X-Api-Key", apiKey);
                        using var response = await s_http.SendAsync(request);
                        if (response.IsSuccessStatusCode)
                        {
                            Interlocked.Increment(ref accepted);
                        }
                        else
                        {
                            Interlocked.Increment(ref rejected);
                            var text = await response.Content.ReadAsStringAsync();
                            Interlocked.CompareExchange(ref firstRejection, $"{(int)response.StatusCode} {text[..Math.Min(200, text.Length)]}", null);
                        }
                    }
                }
            }));
            publishWatch.Stop();
            return "{}";
        }, idle, max);
        http["firstRejection"] = firstRejection;
        result["http"] = Published(http, "HTTP", accepted, rejected, publishWatch);

        // in-process: node k publishes the projects p with p % nodes == k, through its own
        // EventPublisher (bench/GatewayBench /bench/publish with shard/shards), all nodes at once
        Thread.Sleep(500);
        const int inProcessBurst = 601;
        var published = 0;
        var inRejected = 0;
        var inWatch = new Stopwatch();
        var inProcess = Burst.Measure(engine, cpu, targets, events, inProcessBurst, async () =>
        {
            inWatch.Start();
            var answers = await Task.WhenAll(urls.Select(async (node, k) =>
            {
                return JsonNode.Parse(await BenchPublishAsync(node, apiKey, $"prefix=bench-&projects={projects}&events={events}&producers={Math.Max(1, producers / urls.Length)}&burstId={inProcessBurst}&shard={k}&shards={urls.Length}"))!;
            }));
            inWatch.Stop();
            foreach (var a in answers)
            {
                published += (int)(Count(a["published"]) ?? 0);
                inRejected += (int)(Count(a["rejected"]) ?? 0);
            }

            return "{}";
        }, idle, max);
        result["inProcess"] = Published(inProcess, "in-process", published, inRejected, inWatch);

        // a phase's measurement with what its producers saw, and the server CPU per accepted event
        JsonObject Published(JsonObject m, string path, int ok, int refused, Stopwatch watch)
        {
            m.Remove("trigger");
            m["accepted"] = ok;
            m["rejected"] = refused;
            m["publishSeconds"] = Math.Round(watch.Elapsed.TotalSeconds, 3);
            m["publishesPerSec"] = watch.Elapsed.TotalSeconds > 0 ? Math.Round(ok / watch.Elapsed.TotalSeconds) : 0;
            m["serverCpuUsPerEvent"] = ok > 0 && !double.IsNaN(cpu.LastServerSeconds) ? Math.Round(cpu.LastServerSeconds * 1e6 / ok, 1) : null;
            Console.Error.WriteLine($"{label} {path}: {ok} accepted ({m["publishesPerSec"]}/s, {refused} rejected), {m["received"]}/{m["expected"]} deliveries, p50 {m["latencyP50Ms"]} ms p99 {m["latencyP99Ms"]} ms, losses {m["losses"]}, out-of-order/duplicate {m["outOfOrder"]}, server {m["serverCpuUsPerEvent"]} µs CPU/event");
            return m;
        }

        // the log read back (through the first node: in a cluster every node reads the same log)
        var logged = accepted + published;
        var log = await ReadLogBackAsync(urls[0], apiKey, projects, logged);
        result["log"] = log;
        Console.Error.WriteLine($"{label} log: {log["events"]} events kept of {logged} accepted, {log["projectsWithGaps"]} project(s) with a gap");

        result["disconnectedDuringRun"] = engine.FailedLater;
        result["loadAvgEnd"] = LoadAvg();
        engine.CloseAll();
        Write(o, result);

        if (o.Str("strict") is not null)
        {
            var problems = new List<string>();
            if (failed > 0)
            {
                problems.Add($"{failed} client(s) failed to connect");
            }

            foreach (var (name, b) in new[] { ("HTTP", http), ("in-process", inProcess) })
            {
                if (Count(b["losses"]) != 0 || Count(b["outOfOrder"]) != 0 || Count(b["rejected"]) != 0 || Count(b["received"]) != Count(b["expected"]))
                {
                    problems.Add($"{name}: losses {b["losses"]}, out-of-order/duplicate {b["outOfOrder"]}, rejected {b["rejected"]}");
                }
            }

            if (Count(result["log"]?["missingEvents"]) != 0 || Count(result["log"]?["projectsWithGaps"]) != 0)
            {
                problems.Add($"the log does not hold every accepted event in order: {result["log"]?.ToJsonString()}");
            }

            foreach (var p in problems)
            {
                Console.Error.WriteLine($"loadgen --strict {label}: {p}");
            }

            return problems.Count == 0 ? 0 : 3;
        }

        return 0;
    }

    /// <summary>GatewayBench's in-process producers (<c>GET /bench/publish?{query}</c>): its JSON answer, or an exception naming the refusal.</summary>
    private static async Task<string> BenchPublishAsync(string url, string apiKey, string query)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{url}/bench/publish?{query}");
        request.Headers.Add("X-Api-Key", apiKey);
        using var response = await s_http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return response.IsSuccessStatusCode ? text : throw new HttpRequestException($"{url}/bench/publish answered {(int)response.StatusCode}: {text[..Math.Min(200, text.Length)]}");
    }

    /// <summary>Every project's log read back (bench/GatewayBench /bench/log): events kept, gaps, and how many of the <paramref name="logged"/> accepted events are missing.</summary>
    private static async Task<JsonObject> ReadLogBackAsync(string url, string apiKey, int projects, long logged)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{url}/bench/log?prefix=bench-&projects={projects}");
        request.Headers.Add("X-Api-Key", apiKey);
        using var response = await s_http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var log = response.IsSuccessStatusCode ? JsonNode.Parse(text)!.AsObject() : new JsonObject { ["error"] = $"{(int)response.StatusCode} {text[..Math.Min(200, text.Length)]}" };
        log["expectedEvents"] = logged;
        log["missingEvents"] = Count(log["events"]) is { } kept ? logged - kept : null;
        return log;
    }

    /// <summary>A number of a result built in this process or parsed (null when absent or not a number).</summary>
    private static double? Count(JsonNode? n) =>
        n is JsonValue v && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : null;

    /// <summary>Medians of the gateway-cluster runs of a directory per mode, as Markdown and JSON.</summary>
    public static int GatewayClusterReport(Options o)
    {
        var dir = o.Str("in") ?? throw new ArgumentException("--in DIR is required");
        var runs = Directory.GetFiles(dir, "*-gateway-*.json").Order(StringComparer.Ordinal)
            .Select(f => JsonNode.Parse(File.ReadAllText(f))!.AsObject())
            .Where(r => (string?)r["scenario"] == "gateway-cluster")
            .ToList();
        var modes = runs.Select(r => (string)r["mode"]!).Distinct().ToList();
        var summary = new JsonObject();
        var md = new StringBuilder();
        md.AppendLine("# The gateway on three clustered nodes against one node (bench/cluster.sh --gateway)");
        md.AppendLine();
        if (o.Str("note") is { } note)
        {
            md.AppendLine(note);
            md.AppendLine();
        }

        md.AppendLine(CultureInfo.InvariantCulture, $"Medians of {runs.Count / Math.Max(1, modes.Count)} run(s) per mode.");
        md.AppendLine();
        md.AppendLine("| mode | nodes | path | events accepted/s | deliveries/s | p50 ms | p99 ms | server µs CPU/event | lost | out-of-order or duplicate | rejected |");
        md.AppendLine("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        string[] fields = ["publishesPerSec", "deliveriesPerSec", "latencyP50Ms", "latencyP99Ms", "serverCpuUsPerEvent", "losses", "outOfOrder", "rejected"];
        foreach (var mode in modes)
        {
            var of = runs.Where(r => (string?)r["mode"] == mode).ToList();
            foreach (var path in new[] { "http", "inProcess" })
            {
                var cells = new List<string>();
                foreach (var f in fields)
                {
                    var values = of.Select(r => Count(r[path]?[f])).Where(v => v is not null).Select(v => v!.Value).ToList();
                    var median = ClusterReport.Median(values);
                    var key = $"{mode}.{path}.{f}";
                    summary[key] = median;
                    summary[key + ".all"] = new JsonArray([.. values.Select(v => (JsonNode?)v)]);
                    cells.Add(median is { } m ? m.ToString(f.EndsWith("Ms", StringComparison.Ordinal) ? "0.0" : "#,0", CultureInfo.InvariantCulture) : "–");
                }

                md.AppendLine(CultureInfo.InvariantCulture, $"| {mode} | {of[0]["nodes"]} | {(path == "http" ? "HTTP" : "in-process")} | {string.Join(" | ", cells)} |");
            }

            var missing = of.Sum(r => Count(r["log"]?["missingEvents"]) ?? 0);
            var gaps = of.Sum(r => Count(r["log"]?["projectsWithGaps"]) ?? 0);
            summary[$"{mode}.log.missingEvents"] = missing;
            summary[$"{mode}.log.projectsWithGaps"] = gaps;
        }

        md.AppendLine();
        foreach (var mode in modes)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- {mode}: log read back, {summary[$"{mode}.log.missingEvents"]} accepted event(s) missing, {summary[$"{mode}.log.projectsWithGaps"]} project(s) with a gap (all runs).");
        }

        if (modes.Contains("cluster") && modes.Contains("single"))
        {
            foreach (var path in new[] { "http", "inProcess" })
            {
                if (summary[$"cluster.{path}.serverCpuUsPerEvent"] is JsonValue c && summary[$"single.{path}.serverCpuUsPerEvent"] is JsonValue s && (double)s > 0)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"- {(path == "http" ? "HTTP" : "in-process")}: an event costs the cluster {(double)c / (double)s:0.00}× the server CPU of the single node (all nodes and redis-server summed).");
                }
            }
        }

        var mdPath = o.Str("md") ?? throw new ArgumentException("--md FILE is required");
        File.WriteAllText(mdPath, md.ToString());
        if (o.Str("json") is { } jsonPath)
        {
            File.WriteAllText(jsonPath, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }

        Console.Write(md.ToString());
        return 0;
    }
}
