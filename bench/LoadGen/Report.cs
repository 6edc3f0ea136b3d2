using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LoadGen;

/// <summary>Merges the per-run JSON files into a markdown table and one JSON file: medians, spreads, ratios.</summary>
internal static class Report
{
    private static readonly string[] s_servers = ["node", "ours", "raw", "node-msgpack", "ours-msgpack"];

    private sealed record Metric(string Key, string Label, Func<JsonObject, double?> Get, bool HigherIsBetter, string Format);

    public static int Write(Options o)
    {
        var dir = o.Str("in") ?? throw new ArgumentException("--in DIR is required");
        var runs = Directory.GetFiles(dir, "*.json").Order(StringComparer.Ordinal)
            .Select(f => JsonNode.Parse(File.ReadAllText(f))!.AsObject()).ToList();
        var sio = runs.Where(r => (string?)r["scenario"] == "socketio").ToList();
        var gateway = runs.Where(r => (string?)r["scenario"] == "gateway").ToList();
        if (sio.Count == 0 && gateway.Count == 0)
        {
            throw new InvalidOperationException($"no run results in {dir}");
        }

        var sizes = sio.SelectMany(r => r["fanout"]?.AsArray() ?? []).Select(f => (int)f!["clients"]!).Distinct().Order().ToList();
        var metrics = new List<Metric>();
        foreach (var size in sizes)
        {
            JsonObject? Fan(JsonObject r) => r["fanout"]?.AsArray().FirstOrDefault(f => (int)f!["clients"]! == size)?.AsObject();
            var events = sio.Select(r => Fan(r)?["events"]).FirstOrDefault(e => e is not null);
            metrics.Add(new($"fanout{size}.deliveriesPerSec", $"(1) fan-out {size:N0} clients × {events} broadcasts: deliveries/s", r => Num(Fan(r)?["deliveriesPerSec"]), true, "N0"));
            metrics.Add(new($"fanout{size}.p50", $"(1) fan-out {size:N0}: latency p50 ms", r => Num(Fan(r)?["latencyP50Ms"]), false, "0.0"));
            metrics.Add(new($"fanout{size}.p99", $"(1) fan-out {size:N0}: latency p99 ms", r => Num(Fan(r)?["latencyP99Ms"]), false, "0.0"));
            metrics.Add(new($"fanout{size}.losses", $"(1) fan-out {size:N0}: lost deliveries", r => Num(Fan(r)?["losses"]), false, "N0"));
            metrics.Add(new($"fanout{size}.clientCpu", $"(1) fan-out {size:N0}: load client CPU % of a core", r => Num(Fan(r)?["clientCpuPct"]), false, "0"));
            metrics.Add(new($"fanout{size}.serverCpu", $"(1) fan-out {size:N0}: server CPU % of a core", r => Num(Fan(r)?["serverCpuPct"]), false, "0"));
        }

        var fixedLabel = sio.Select(r => r["fixed"]).FirstOrDefault(f => f is not null) is { } fx
            ? $"{fx["rate"]}/s for {fx["offeredSeconds"]} s to {fx["recipients"]:N0}" : "fixed rate";
        metrics.Add(new("fixed.p50", $"(2) fixed {fixedLabel}: latency p50 ms", r => Num(r["fixed"]?["latencyP50Ms"]), false, "0.0"));
        metrics.Add(new("fixed.p99", $"(2) fixed: latency p99 ms", r => Num(r["fixed"]?["latencyP99Ms"]), false, "0.0"));
        metrics.Add(new("fixed.losses", "(2) fixed: lost deliveries", r => Num(r["fixed"]?["losses"]), false, "N0"));
        metrics.Add(new("fixed.seconds", "(2) fixed: seconds until the last delivery", r => Num(r["fixed"]?["seconds"]), false, "0.00"));
        metrics.Add(new("memory.kbPerClient", "(3) idle memory: RSS KB per connected+joined client", r => Num(r["memory"]?["bytesPerClient"]) / 1024, false, "0.0"));
        metrics.Add(new("connect.perSec", "(4) connect rate, cold server: handshake+connect+join per s", r => Num(r["connect"]?["connectsPerSec"]), true, "N0"));
        metrics.Add(new("connect.p99", "(4) connect, cold: handshake p99 ms", r => Num(r["connect"]?["handshakeP99Ms"]), false, "0.0"));
        metrics.Add(new("connect.failed", "(4) connect, cold: failed clients", r => Num(r["connect"]?["failed"]), false, "N0"));
        metrics.Add(new("connectWarm.perSec", "(4) connect rate, warm server: handshake+connect+join per s", r => Num(r["connectWarm"]?["connectsPerSec"]), true, "N0"));
        metrics.Add(new("connectWarm.p99", "(4) connect, warm: handshake p99 ms", r => Num(r["connectWarm"]?["handshakeP99Ms"]), false, "0.0"));
        metrics.Add(new("connectWarm.failed", "(4) connect, warm: failed clients", r => Num(r["connectWarm"]?["failed"]), false, "N0"));

        var summary = new JsonObject();
        var md = new StringBuilder();
        md.AppendLine("# End-to-end benchmark: latest results").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"Generated {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC by `bench/run.sh{(o.Str("mode") == "short" ? " --short" : "")}`. {o.Str("note", "")}").AppendLine();
        md.AppendLine("Each cell: median of the runs, (min–max) across runs, [n runs]. Ratios are of medians: `ours÷node` and `ours÷raw` (raw = plain Kestrel WebSocket broadcast, the ceiling).").AppendLine();
        var msgpack = sio.Any(r => ((string?)r["server"])?.EndsWith("-msgpack", StringComparison.Ordinal) == true);
        var mp = new StringBuilder();
        if (msgpack)
        {
            mp.AppendLine("## MessagePack parser (socket.io-msgpack-parser 3.x format) against the JSON parser").AppendLine();
            mp.AppendLine("The same scenarios with the MessagePack parser on both servers (`ours-msgpack`: BenchHost `--msgpack`, `AddMessagePackParser()`; `node-msgpack`: socket.io 4.8.4 with `parser: require('socket.io-msgpack-parser')`); the load client speaks that format (`--parser msgpack`). The JSON columns are the rows of the table above.").AppendLine();
            mp.AppendLine("| metric | node-msgpack | ours-msgpack | node (JSON) | ours (JSON) | ours-msgpack÷ours | ours-msgpack÷node-msgpack | node-msgpack÷node |");
            mp.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        }

        if (sio.Count > 0)
        {
            md.AppendLine("| metric | node socket.io 4.8.4 | ours | raw Kestrel (ceiling) | ours÷node | ours÷raw | node÷raw |");
            md.AppendLine("|---|---:|---:|---:|---:|---:|---:|");
            foreach (var m in metrics)
            {
                var row = new JsonObject();
                var medians = new Dictionary<string, double?>();
                var cells = new List<string>();
                foreach (var server in s_servers)
                {
                    var values = sio.Where(r => (string?)r["server"] == server).Select(m.Get).Where(v => v is not null && !double.IsNaN(v.Value)).Select(v => v!.Value).Order().ToList();
                    if (values.Count == 0)
                    {
                        cells.Add("–");
                        medians[server] = null;
                        continue;
                    }

                    var median = Median(values);
                    medians[server] = median;
                    row[server] = new JsonObject
                    {
                        ["median"] = Math.Round(median, 3),
                        ["min"] = Math.Round(values[0], 3),
                        ["max"] = Math.Round(values[^1], 3),
                        ["values"] = new JsonArray([.. values.Select(v => (JsonNode)Math.Round(v, 3))]),
                    };
                    cells.Add(values.Count > 1
                        ? $"{median.ToString(m.Format, CultureInfo.InvariantCulture)} ({values[0].ToString(m.Format, CultureInfo.InvariantCulture)}–{values[^1].ToString(m.Format, CultureInfo.InvariantCulture)}) [{values.Count}]"
                        : $"{median.ToString(m.Format, CultureInfo.InvariantCulture)} [1]");
                }

                var oursNode = Ratio(medians["ours"], medians["node"]);
                var oursRaw = Ratio(medians["ours"], medians["raw"]);
                var nodeRaw = Ratio(medians["node"], medians["raw"]);
                row["oursOverNode"] = oursNode;
                row["oursOverRaw"] = oursRaw;
                row["nodeOverRaw"] = nodeRaw;
                if (msgpack)
                {
                    var mpOverJson = Ratio(medians["ours-msgpack"], medians["ours"]);
                    var mpOverNodeMp = Ratio(medians["ours-msgpack"], medians["node-msgpack"]);
                    var nodeMpOverNode = Ratio(medians["node-msgpack"], medians["node"]);
                    row["oursMsgpackOverOurs"] = mpOverJson;
                    row["oursMsgpackOverNodeMsgpack"] = mpOverNodeMp;
                    row["nodeMsgpackOverNode"] = nodeMpOverNode;
                    mp.AppendLine(CultureInfo.InvariantCulture, $"| {m.Label} | {cells[3]} | {cells[4]} | {cells[0]} | {cells[1]} | {R(mpOverJson)} | {R(mpOverNodeMp)} | {R(nodeMpOverNode)} |");
                }

                row["label"] = m.Label;
                row["higherIsBetter"] = m.HigherIsBetter;
                summary[m.Key] = row;
                md.AppendLine(CultureInfo.InvariantCulture, $"| {m.Label} | {cells[0]} | {cells[1]} | {cells[2]} | {R(oursNode)} | {R(oursRaw)} | {R(nodeRaw)} |");
            }

            md.AppendLine();
            md.AppendLine("Latency is measured from `sentAt` (stamped by the server just before it emits) to the load client's read of the frame, on the same clock. A figure taken while the load client's CPU is near 100 % of its core measures the client, not the server: check the CPU rows. Connect rate is measured twice on each server: cold (the first clients after it starts, its JIT compiling as they come) and warm (after every other scenario, all clients gone, as many connect again).").AppendLine();
            AppendBar(md, summary, sizes);
            if (msgpack)
            {
                md.Append(mp).AppendLine();
            }
        }

        JsonObject? gatewaySummary = null;
        if (gateway.Count > 0)
        {
            gatewaySummary = [];
            md.AppendLine("## (5) Gateway end to end (ours only: Node.js has no gateway)").AppendLine();
            var g0 = gateway[0]["gateway"]!;
            var fx0 = gateway.Select(r => r["gatewayFixedRate"]).FirstOrDefault(f => f is not null);
            md.AppendLine(CultureInfo.InvariantCulture, $"{g0["projects"]} projects × {g0["clientsPerProject"]} clients (JWT in the auth payload, `join-project`), then, one phase after another against the same viewers, `agent:status:update` events from {g0["producers"]} concurrent producers: POSTs to a do-nothing endpoint in the same process (`/bench/noop`, the ceiling of the HTTP layer), {g0["events"]} single events per project POSTed to `/api/projects/{{id}}/events` (X-Api-Key), POSTs of JSON arrays, then the same published inside the gateway's process through `EventPublisher` (the in-process API the build runner uses; `bench/GatewayBench`), single and in batches. Each project's events come from one producer, in order; latency runs from the producer's `sentAt` (before the POST or the call) to the client's read.{(fx0 is null ? string.Empty : $" Then the fixed-rate phase: {fx0["posted"]} single events POSTed at {fx0["offeredRate"]}/s for {fx0["scheduledSeconds"]} s, round-robin over every project, each due on an absolute timetable and stamped with its scheduled time as `sentAt`, so its latency runs from when it was due (a late send or a queued request counts; no coordinated omission).")}{(gateway.Any(r => r["gatewayInProcessFixedRate"] is not null) ? " The same timetable again inside the gateway's process (`/bench/publish?rate=`, `EventPublisher.PublishAsync`)." : string.Empty)} Afterwards the log of every project is read back.").AppendLine();
            var perRep = AppendGatewayReps(md, gateway);
            string Cell(IEnumerable<JsonObject> rs, Func<JsonObject, double?> get, string format, JsonObject into, string key)
            {
                var values = rs.Select(get).Where(v => v is not null && !double.IsNaN(v.Value)).Select(v => v!.Value).Order().ToList();
                if (values.Count == 0)
                {
                    return "–";
                }

                var median = Median(values);
                into[key] = new JsonObject { ["median"] = Math.Round(median, 3), ["min"] = Math.Round(values[0], 3), ["max"] = Math.Round(values[^1], 3) };
                return $"{median.ToString(format, CultureInfo.InvariantCulture)} ({values[0].ToString(format, CultureInfo.InvariantCulture)}–{values[^1].ToString(format, CultureInfo.InvariantCulture)}) [{values.Count}]";
            }

            // a table of one column (median, spread) per row; the medians go to the JSON summary too
            JsonObject Table(string title, (string Label, Func<JsonObject, double?> Get, string Format)[] rows)
            {
                var into = new JsonObject();
                md.AppendLine(CultureInfo.InvariantCulture, $"| {title} | median (min–max) [n] |");
                md.AppendLine("|---|---:|");
                foreach (var (label, get, format) in rows)
                {
                    md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {Cell(gateway, get, format, into, label)} |");
                }

                md.AppendLine();
                return into;
            }

            var connections = Table("connections",
            [
                ("connect + auth (JWT) + join per s", r => Num(r["connect"]?["connectsPerSec"]), "N0"),
                ("failed clients", r => Num(r["connect"]?["failed"]), "N0"),
                ("RSS KB per joined client", r => Num(r["memory"]?["bytesPerClient"]) / 1024, "0.0"),
            ]);
            var http = new JsonObject();
            var inProcess = new JsonObject();
            md.AppendLine("| publishing | HTTP API | in-process API |");
            md.AppendLine("|---|---:|---:|");
            (string Label, string Field, string Format)[] pm =
            [
                ("events accepted per s (HTTP 202 / publication returned)", "publishesPerSec", "N0"),
                ("events rejected", "rejected", "N0"),
                ("deliveries/s", "deliveriesPerSec", "N0"),
                ("latency p50 ms", "latencyP50Ms", "0.0"),
                ("latency p99 ms", "latencyP99Ms", "0.0"),
                ("lost deliveries", "losses", "N0"),
                ("deliveries out of order", "outOfOrder", "N0"),
                ("server CPU % of a core", "serverCpuPct", "0"),
                ("load client CPU % of a core", "clientCpuPct", "0"),
            ];
            foreach (var (label, field, format) in pm)
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {Cell(gateway, r => Num(r["gateway"]?[field]), format, http, label)} | {Cell(gateway, r => Num(r["gatewayInProcess"]?[field]), format, inProcess, label)} |");
            }

            md.AppendLine();
            var log = Table("the log, read back after every phase",
            [
                ("events accepted (every phase)", r => Num(r["log"]?["expectedEvents"]), "N0"),
                ("events in the log", r => Num(r["log"]?["events"]), "N0"),
                ("accepted events missing from the log", r => Num(r["log"]?["missingEvents"]), "N0"),
                ("projects whose seqs have a gap", r => Num(r["log"]?["projectsWithGaps"]), "N0"),
            ]);
            gatewaySummary["connections"] = connections;
            gatewaySummary["httpApi"] = http;
            gatewaySummary["inProcessApi"] = inProcess;
            gatewaySummary["log"] = log;
            gatewaySummary["perRep"] = perRep;
        }

        md.AppendLine("## Runs").AppendLine();
        md.AppendLine("| file order | scenario | server | rep | load average at start → end | client threads |");
        md.AppendLine("|---|---|---|---|---|---|");
        var i = 0;
        foreach (var r in runs)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"| {++i} | {r["scenario"]} | {r["server"]} | {r["rep"]} | {r["loadAvg"]} → {r["loadAvgEnd"]} | {r["clientThreads"]} |");
        }

        var json = new JsonObject
        {
            ["generatedAt"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["mode"] = o.Str("mode", "full"),
            ["note"] = o.Str("note", ""),
            ["summary"] = summary,
            ["gateway"] = gatewaySummary,
            ["runs"] = new JsonArray([.. runs.Select(r => (JsonNode)r.DeepClone())]),
        };
        File.WriteAllText(o.Str("md", Path.Combine(dir, "latest.md")), md.ToString());
        File.WriteAllText(o.Str("json", Path.Combine(dir, "latest.json")), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine(md.ToString());
        return 0;
    }

    private static void AppendBar(StringBuilder md, JsonObject summary, List<int> sizes)
    {
        if (sizes.Count == 0)
        {
            return;
        }

        var top = sizes[^1];
        double? Get(string key, string field) => summary[key]?[field] is JsonNode n ? (double)n : null;
        md.AppendLine("The bar of issue 5 against these medians:").AppendLine();
        md.AppendLine("| bar | measured | met |");
        md.AppendLine("|---|---:|---|");
        void Line(string bar, double? value, Func<double, bool> ok, string unit) =>
            md.AppendLine(CultureInfo.InvariantCulture, $"| {bar} | {(value is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) + unit : "–")} | {(value is { } w ? ok(w) ? "yes" : "**no**" : "–")} |");
        Line($"fan-out deliveries/s at {top:N0} ≥ 3× node", Get($"fanout{top}.deliveriesPerSec", "oursOverNode"), v => v >= 3, "×");
        Line("fixed-rate p99 ≤ 0.5× node", Get("fixed.p99", "oursOverNode"), v => v <= 0.5, "×");
        Line("idle memory per client ≤ 0.5× node", Get("memory.kbPerClient", "oursOverNode"), v => v <= 0.5, "×");
        Line("connect rate ≥ 2× node (cold server: the first clients after it starts)", Get("connect.perSec", "oursOverNode"), v => v >= 2, "×");
        Line("connect rate ≥ 2× node (warm server: as many again after the scenarios above)", Get("connectWarm.perSec", "oursOverNode"), v => v >= 2, "×");
        Line($"fan-out deliveries/s at {top:N0} ≥ 0.8× raw Kestrel", Get($"fanout{top}.deliveriesPerSec", "oursOverRaw"), v => v >= 0.8, "×");
        var losses = sizes.Sum(s => summary[$"fanout{s}.losses"]?["ours"]?["max"] is JsonNode n ? (double)n : 0) + (summary["fixed.losses"]?["ours"]?["max"] is JsonNode f ? (double)f : 0);
        Line("zero losses (ours, every run)", losses, v => v == 0, " lost");
        md.AppendLine();
    }

    /// <summary>Scenario 5 per repetition and the median: the rates of every phase, latencies, losses; then the issue 13 bar against the medians.</summary>
    private static JsonObject AppendGatewayReps(StringBuilder md, List<JsonObject> gateway)
    {
        var runs = gateway.OrderBy(r => Num(r["rep"]) ?? 0).ToList();
        IEnumerable<int> Sizes(string prefix) => runs.SelectMany(r => r.Select(p => p.Key))
            .Where(k => k.StartsWith(prefix, StringComparison.Ordinal) && int.TryParse(k.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out _))
            .Select(k => int.Parse(k.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture)).Distinct().Order();
        double? Sum(JsonObject r, string field) =>
            r.Where(p => p.Key.StartsWith("gateway", StringComparison.Ordinal) && p.Value is JsonObject).Select(p => Num(p.Value![field])).Aggregate((double?)0, (a, v) => a + (v ?? 0));
        double? Log(JsonObject r, bool extra) => Num(r["log"]?["missingEvents"]) is { } m ? Math.Max(0, extra ? -m : m) : null;

        var fx = runs.Select(r => r["gatewayFixedRate"]).FirstOrDefault(f => f is not null);
        var fixedLabel = fx is null ? "fixed rate" : $"fixed {Num(fx["offeredRate"]):N0}/s × {fx["scheduledSeconds"]} s over {fx["projects"]} projects × {fx["clientsPerProject"]}";
        var rows = new List<(string Key, string Label, Func<JsonObject, double?> Get, string Format)>
        {
            ("ceilingPostsPerSec", "do-nothing endpoint (ceiling): POSTs/s", r => Num(r["httpCeiling"]?["postsPerSec"]), "N0"),
            ("httpSinglePerSec", "HTTP single events accepted/s", r => Num(r["gateway"]?["publishesPerSec"]), "N0"),
            ("httpSingleOfCeiling", "HTTP single events: fraction of the ceiling", r => Num(r["gateway"]?["ofCeiling"]), "0.00"),
        };
        foreach (var b in Sizes("gatewayBatch"))
        {
            rows.Add(($"httpBatch{b}PerSec", $"HTTP ×{b} (arrays of {b}) events accepted/s", r => Num(r[$"gatewayBatch{b}"]?["publishesPerSec"]), "N0"));
        }

        rows.Add(("inProcessSinglePerSec", "in-process single events/s", r => Num(r["gatewayInProcess"]?["publishesPerSec"]), "N0"));
        foreach (var b in Sizes("gatewayInProcessBatch"))
        {
            rows.Add(($"inProcessBatch{b}PerSec", $"in-process ×{b} (batch calls) events/s", r => Num(r[$"gatewayInProcessBatch{b}"]?["publishesPerSec"]), "N0"));
        }

        rows.AddRange(
        [
            ("httpSingleP50Ms", "HTTP single: publish → viewer p50 ms", r => Num(r["gateway"]?["latencyP50Ms"]), "0.0"),
            ("httpSingleP99Ms", "HTTP single: publish → viewer p99 ms", r => Num(r["gateway"]?["latencyP99Ms"]), "0.0"),
            ("fixedAchievedPerSec", $"{fixedLabel}: events accepted/s achieved", r => Num(r["gatewayFixedRate"]?["achievedPerSec"]), "N0"),
            ("fixedP50Ms", "fixed rate: scheduled send → viewer p50 ms", r => Num(r["gatewayFixedRate"]?["latencyP50Ms"]), "0.0"),
            ("fixedP99Ms", "fixed rate: scheduled send → viewer p99 ms", r => Num(r["gatewayFixedRate"]?["latencyP99Ms"]), "0.0"),
            ("fixedMaxMs", "fixed rate: scheduled send → viewer max ms", r => Num(r["gatewayFixedRate"]?["latencyMaxMs"]), "0.0"),
            ("fixedAcceptP99Ms", "fixed rate: scheduled send → 202 p99 ms", r => Num(r["gatewayFixedRate"]?["acceptP99Ms"]), "0.0"),
            ("fixedSenderLagMaxMs", "fixed rate: load client's sender lag behind the timetable, max ms", r => Num(r["gatewayFixedRate"]?["senderLagMaxMs"]), "0.0"),
            ("fixedDeliveries", "fixed rate: deliveries received", r => Num(r["gatewayFixedRate"]?["received"]), "N0"),
            ("fixedExpected", "fixed rate: deliveries expected", r => Num(r["gatewayFixedRate"]?["expected"]), "N0"),
            ("fixedNotAccepted", "fixed rate: events rejected or unanswered", r => r["gatewayFixedRate"] is JsonNode f ? (Num(f["rejected"]) ?? 0) + (Num(f["unanswered"]) ?? 0) : null, "N0"),
            ("fixedInProcessAchievedPerSec", "in-process fixed rate (same timetable, `EventPublisher`): events published/s achieved", r => Num(r["gatewayInProcessFixedRate"]?["achievedPerSec"]), "N0"),
            ("fixedInProcessP50Ms", "in-process fixed rate: scheduled call → viewer p50 ms", r => Num(r["gatewayInProcessFixedRate"]?["latencyP50Ms"]), "0.0"),
            ("fixedInProcessP99Ms", "in-process fixed rate: scheduled call → viewer p99 ms", r => Num(r["gatewayInProcessFixedRate"]?["latencyP99Ms"]), "0.0"),
            ("fixedInProcessMaxMs", "in-process fixed rate: scheduled call → viewer max ms", r => Num(r["gatewayInProcessFixedRate"]?["latencyMaxMs"]), "0.0"),
            ("fixedInProcessNotAccepted", "in-process fixed rate: events rejected or unanswered", r => r["gatewayInProcessFixedRate"] is JsonNode f ? (Num(f["rejected"]) ?? 0) + (Num(f["unanswered"]) ?? 0) : null, "N0"),
            ("lostDeliveries", "lost deliveries (every phase)", r => Sum(r, "losses"), "N0"),
            ("duplicateDeliveries", "duplicate or out-of-order deliveries (every phase)", r => Sum(r, "outOfOrder"), "N0"),
            ("logMissing", "log: accepted events missing", r => Log(r, false), "N0"),
            ("logExtra", "log: events beyond those accepted (duplicates)", r => Log(r, true), "N0"),
            ("logGaps", "log: projects whose seqs have a gap", r => Num(r["log"]?["projectsWithGaps"]), "N0"),
        ]);

        var summary = new JsonObject();
        md.AppendLine("Per repetition (each run against a freshly started gateway) and the median:").AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"| metric | {string.Join(" | ", runs.Select(r => $"rep {r["rep"]}"))} | median |");
        md.AppendLine(CultureInfo.InvariantCulture, $"|---|{string.Concat(runs.Select(_ => "---:|"))}---:|");
        foreach (var (key, label, get, format) in rows)
        {
            var values = runs.Select(get).ToList();
            var present = values.Where(v => v is not null && !double.IsNaN(v.Value)).Select(v => v!.Value).Order().ToList();
            if (present.Count == 0)
            {
                continue;
            }

            var median = Median(present);
            summary[key] = new JsonObject
            {
                ["label"] = label,
                ["median"] = Math.Round(median, 3),
                ["values"] = new JsonArray([.. values.Select(v => v is { } x ? (JsonNode)Math.Round(x, 3) : null)]),
            };
            md.AppendLine(CultureInfo.InvariantCulture, $"| {label} | {string.Join(" | ", values.Select(v => v is { } x && !double.IsNaN(x) ? x.ToString(format, CultureInfo.InvariantCulture) : "–"))} | **{median.ToString(format, CultureInfo.InvariantCulture)}** |");
        }

        md.AppendLine();
        double? M(string key) => summary[key]?["median"] is JsonNode n ? (double)n : null;
        double? Max(string key) => summary[key]?["values"]?.AsArray().Select(v => v is null ? (double?)null : (double)v).Max();
        md.AppendLine("The bar of issue 13 against these medians (it names 1 000 projects × 10 viewers and 2 000 events/s for the fixed rate; a smaller run is labelled with its own size):").AppendLine();
        md.AppendLine("| bar | measured | met |");
        md.AppendLine("|---|---:|---|");
        void Line(string bar, double? value, Func<double, bool> ok, string format, string unit) =>
            md.AppendLine(CultureInfo.InvariantCulture, $"| {bar} | {(value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) + unit : "–")} | {(value is { } w ? ok(w) ? "yes" : "**no**" : "–")} |");
        Line("HTTP single events ≥ 20 000 accepted/s", M("httpSinglePerSec"), v => v >= 20_000, "N0", "/s");
        Line("HTTP single events ≥ 0.60 of the do-nothing ceiling", M("httpSingleOfCeiling"), v => v >= 0.6, "0.00", "×");
        var inProcess = summary.Where(p => p.Key.StartsWith("inProcess", StringComparison.Ordinal)).Select(p => M(p.Key)).Max();
        Line("in-process ≥ 100 000 events/s (the faster of single and batch)", inProcess, v => v >= 100_000, "N0", "/s");
        var barSize = fx is not null && Num(fx["offeredRate"]) == 2000 && Num(fx["projects"]) == 1000 && Num(fx["clientsPerProject"]) == 10;
        Line($"p99 publish → delivery ≤ 20 ms, {fixedLabel}{(barSize || fx is null ? string.Empty : " (not the bar's size: met only as a smoke check)")}", M("fixedP99Ms"), v => v <= 20, "0.0", " ms");
        double? bad = summary["logMissing"] is null ? null : new[] { "lostDeliveries", "duplicateDeliveries", "logMissing", "logExtra", "logGaps", "fixedNotAccepted", "fixedInProcessNotAccepted" }.Select(Max).Sum();
        Line("0 lost, 0 gaps, 0 duplicates (every run, every phase, and the log)", bad, v => v == 0, "N0", string.Empty);
        md.AppendLine();
        return summary;
    }

    private static double? Num(JsonNode? n) => n is null ? null : n.GetValueKind() == JsonValueKind.Number ? (double)n : null;

    private static double Median(List<double> sorted) =>
        sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;

    private static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y != 0 ? Math.Round(x / y, 3) : null;

    private static string R(double? r) => r is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) + "×" : "–";
}
