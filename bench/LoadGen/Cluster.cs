using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

using LoadGen;

/// <summary>
/// The cluster scenario (bench/cluster.sh): clients spread over the nodes of one cluster (or all on
/// one node without Redis, the local baseline), bursts of broadcasts to the room every client is in,
/// started on the first node.
/// </summary>
internal static partial class Commands
{
    /// <summary>The nodes of a run: <c>--urls</c> (comma-separated, one host), their host and port, and <c>--server-pids</c> (the processes whose CPU is summed).</summary>
    private static (string[] Urls, (string Host, int Port)[] Hosts, int[] Pids) Nodes(Options o, string fallback)
    {
        var urls = o.Str("urls", fallback).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(u => u.TrimEnd('/')).ToArray();
        var hosts = urls.Select(HostPort).ToArray();
        if (hosts.Select(h => h.Host).Distinct().Count() != 1)
        {
            throw new ArgumentException("every --urls entry must be on the same host");
        }

        var pids = o.Str("server-pids", "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        return (urls, hosts, pids);
    }

    public static async Task<int> ClusterAsync(Options o)
    {
        var (urls, hosts, pids) = Nodes(o, "http://127.0.0.1:3200");
        var clients = o.Int("clients", 10_000);
        var broadcasts = o.Int("broadcasts", 200);
        var bursts = o.Int("bursts", 3);
        var concurrency = o.Int("concurrency", 100);
        var idle = TimeSpan.FromSeconds(o.Int("idle-timeout", 10));
        var max = TimeSpan.FromSeconds(o.Int("max-burst-seconds", 120));
        var result = Header(o, "cluster");
        result["mode"] = o.Str("mode", urls.Length > 1 ? "cluster" : "single");
        result["nodes"] = urls.Length;
        foreach (var url in urls)
        {
            await WaitUpAsync(url, "/bench/stats", TimeSpan.FromSeconds(60));
        }

        using var engine = new Engine(hosts[0].Host, [.. hosts.Select(h => h.Port)], o.Int("threads", DefaultThreads()), o.Int("source-addrs", 1));
        var cpu = new CpuMeter(pids);
        var connect = MeasureConnect(engine, cpu, clients, concurrency, 0, TimeSpan.FromSeconds(o.Int("connect-timeout", 120)));
        result["connect"] = connect;
        var ready = (int)connect["ready"]!;
        var failed = (int)connect["failed"]!;
        var perNode = new JsonArray();
        foreach (var url in urls)
        {
            perNode.Add((await StatsAsync(url))?["clients"]?.GetValue<long>());
        }

        result["clientsPerNode"] = perNode;
        Console.Error.WriteLine($"[{o.Str("server", "?")} {result["mode"]}] {ready}/{clients} ready over {urls.Length} node(s) ({perNode.ToJsonString()}), failed {failed}");
        if (ready == 0)
        {
            result["error"] = "no client connected";
            Write(o, result);
            return 1;
        }

        var targets = engine.All.Where(c => c.State == ConnState.Ready).ToList();
        var burstId = 100;
        var warmup = o.Int("warmup", 50);
        if (warmup > 0)
        {
            var id = burstId++;
            result["warmup"] = Burst.Measure(engine, cpu, targets, warmup, id,
                () => s_http.GetStringAsync($"{urls[0]}/bench/burst?project=all&count={warmup}&rate=0&batch=1&burstId={id}"), idle, max);
        }

        var measured = new JsonArray();
        for (var b = 0; b < bursts; b++)
        {
            Thread.Sleep(500);
            var id = burstId++;
            var m = Burst.Measure(engine, cpu, targets, broadcasts, id,
                () => s_http.GetStringAsync($"{urls[0]}/bench/burst?project=all&count={broadcasts}&rate=0&batch=1&burstId={id}"), idle, max);
            measured.Add(m);
            Console.Error.WriteLine($"[{o.Str("server", "?")} {result["mode"]}] burst {b + 1}: {m["deliveriesPerSec"]}/s p50 {m["latencyP50Ms"]} ms p99 {m["latencyP99Ms"]} ms losses {m["losses"]} out-of-order {m["outOfOrder"]} (server cpu {m["serverCpuUsPerDelivery"]} µs/delivery)");
        }

        result["bursts"] = measured;
        result["disconnectedDuringRun"] = engine.FailedLater;
        result["fatal"] = engine.FatalError;
        result["loadAvgEnd"] = LoadAvg();
        engine.CloseAll();
        Write(o, result);
        if (engine.FatalError is not null)
        {
            return 1;
        }

        var strict = Strict(o, result, failed, measured.Select(m => m!.AsObject()));
        if (strict == 0 && o.Str("strict") is not null && measured.Any(m => (long)m!["losses"]! != 0))
        {
            Console.Error.WriteLine($"loadgen --strict [{o.Str("server", "?")} cluster]: deliveries were lost");
            return 3;
        }

        return strict;
    }
}

/// <summary>The cluster runs of one directory as a markdown table: medians per server and mode, ratios.</summary>
internal static class ClusterReport
{
    private sealed record Metric(string Key, string Label, Func<JsonObject, double?> Get, string Format, bool HigherIsBetter);

    public static int Write(Options o)
    {
        var dir = o.Str("in") ?? throw new ArgumentException("--in DIR is required");
        var runs = Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal)
            .Select(f => JsonNode.Parse(File.ReadAllText(f))!.AsObject())
            .Where(r => (string?)r["scenario"] == "cluster").ToList();
        if (runs.Count == 0)
        {
            throw new InvalidOperationException($"no cluster run results in {dir}");
        }

        // a run's figure is the median over its bursts; a cell is the median over runs
        static double? PerRun(JsonObject run, string field) =>
            Median([.. (run["bursts"]?.AsArray() ?? []).Select(b => b?[field] is JsonValue v && v.TryGetValue(out double d) ? d : double.NaN).Where(d => !double.IsNaN(d))]);
        static double? Sum(JsonObject run, string field) =>
            (run["bursts"]?.AsArray() ?? []).Sum(b => b?[field] is JsonValue v && v.TryGetValue(out double d) ? d : 0);

        Metric[] metrics =
        [
            new("deliveriesPerSec", "deliveries/s", r => PerRun(r, "deliveriesPerSec"), "N0", true),
            new("p50", "latency p50 ms", r => PerRun(r, "latencyP50Ms"), "0.0", false),
            new("p99", "latency p99 ms", r => PerRun(r, "latencyP99Ms"), "0.0", false),
            new("losses", "lost deliveries (all bursts)", r => Sum(r, "losses"), "N0", false),
            new("outOfOrder", "out of order (all bursts)", r => Sum(r, "outOfOrder"), "N0", false),
            new("cpuUsPerDelivery", "server CPU µs per delivery (all nodes + redis-server)", r => PerRun(r, "serverCpuUsPerDelivery"), "0.00", false),
        ];

        var servers = runs.Select(r => (string)r["server"]!).Distinct().Order(StringComparer.Ordinal).ToList();
        var modes = new[] { "cluster", "single" }.Where(m => runs.Any(r => (string?)r["mode"] == m)).ToList();
        var summary = new JsonObject();
        var md = new StringBuilder();
        var sample = runs[0];
        var bursts = sample["bursts"]?.AsArray();
        md.AppendLine(CultureInfo.InvariantCulture, $"Generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC by `bench/cluster.sh`. {o.Str("note", "")}").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"{sample["connect"]?["clients"]:N0} clients; each burst: {bursts?[0]?["events"]} broadcasts to the room of every client, started on the first node; {bursts?.Count} bursts per run. `cluster`: 3 nodes on one redis-server, clients spread evenly; `single`: 1 node, no Redis, the same clients. A cell: median over runs of each run's median burst, (min–max), [runs].").AppendLine();
        md.Append("| | ");
        var columns = new List<(string Server, string Mode)>();
        foreach (var mode in modes)
        {
            foreach (var server in servers)
            {
                columns.Add((server, mode));
                md.Append(CultureInfo.InvariantCulture, $"{server} {mode} | ");
            }
        }

        foreach (var mode in modes)
        {
            md.Append(CultureInfo.InvariantCulture, $"ours÷node {mode} | ");
        }

        md.AppendLine().Append("|---|").Append(string.Concat(Enumerable.Repeat("---|", columns.Count + modes.Count))).AppendLine();
        foreach (var metric in metrics)
        {
            md.Append(CultureInfo.InvariantCulture, $"| {metric.Label} | ");
            var medians = new Dictionary<(string, string), double?>();
            foreach (var (server, mode) in columns)
            {
                var values = runs.Where(r => (string)r["server"]! == server && (string?)r["mode"] == mode).Select(metric.Get).Where(v => v is not null).Select(v => v!.Value).ToList();
                var median = Median(values);
                medians[(server, mode)] = median;
                summary[$"{server}.{mode}.{metric.Key}"] = median;
                md.Append(values.Count == 0 ? "– | " : string.Create(CultureInfo.InvariantCulture, $"{median!.Value.ToString(metric.Format, CultureInfo.InvariantCulture)} ({values.Min().ToString(metric.Format, CultureInfo.InvariantCulture)}–{values.Max().ToString(metric.Format, CultureInfo.InvariantCulture)}) [{values.Count}] | "));
            }

            foreach (var mode in modes)
            {
                var ratio = medians.GetValueOrDefault(("ours", mode)) is { } a && medians.GetValueOrDefault(("node", mode)) is { } b && b != 0 ? a / b : (double?)null;
                summary[$"ratio.{mode}.{metric.Key}"] = ratio;
                md.Append(ratio is { } x && metric.Key is not ("losses" or "outOfOrder") ? x.ToString("0.00", CultureInfo.InvariantCulture) + "× | " : "– | ");
            }

            md.AppendLine();
        }

        md.AppendLine();
        foreach (var server in servers)
        {
            if (summary[$"{server}.cluster.cpuUsPerDelivery"] is JsonValue c && summary[$"{server}.single.cpuUsPerDelivery"] is JsonValue s1
                && summary[$"{server}.cluster.deliveriesPerSec"] is JsonValue cd && summary[$"{server}.single.deliveriesPerSec"] is JsonValue sd
                && (double)s1 > 0 && (double)sd > 0) // a smoke run's bursts can be too short for the CPU clock to move
            {
                var cost = (double)c / (double)s1;
                var speed = (double)cd / (double)sd;
                summary[$"{server}.crossNodeCpuFactor"] = cost;
                summary[$"{server}.crossNodeThroughputFactor"] = speed;
                md.AppendLine(CultureInfo.InvariantCulture, $"- {server}: a delivery through the cluster costs {cost:0.00}× the server CPU of a local one; the cluster delivers {speed:0.00}× the deliveries/s of one node.");
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

    internal static double? Median(List<double> values)
    {
        if (values.Count == 0)
        {
            return null;
        }

        values.Sort();
        var mid = values.Count / 2;
        return values.Count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }
}
