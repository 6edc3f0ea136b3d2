// The load client of the end-to-end benchmark (bench/run.sh). It speaks Engine.IO v4 over
// WebSocket and Socket.IO v5 itself, on raw non-blocking sockets driven by its own epoll loops
// (several threads, one read() per ready socket), so one process holds 10 000 connections.
//
//   loadgen run      --url http://127.0.0.1:PORT --server NAME [--server-pid PID] [--parser json|msgpack] --out FILE ...
//   loadgen gateway  --url http://127.0.0.1:PORT --jwt-secret S --api-key K --out FILE ...
//   loadgen report   --in DIR --md FILE --json FILE [--note TEXT]
//   loadgen cluster  --urls http://127.0.0.1:A,http://127.0.0.1:B,... --server NAME --server-pids P,Q,... --out FILE ...
//   loadgen cluster-report --in DIR --md FILE --json FILE [--note TEXT]
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoadGen;

try
{
    if (args.Length == 0)
    {
        Console.Error.WriteLine("usage: loadgen run|gateway|report|cluster|cluster-report|gateway-cluster|gateway-cluster-report [--option value ...]  (see bench/run.sh)");
        return 2;
    }

    var opts = Options.Parse(args.Skip(1));

    // The client runs pinned to one core, where the thread pool starts with one worker and, when
    // starved, adds threads slowly. A phase that opens hundreds of HTTP connections at once (the
    // fixed-rate phase after a stall) starved it for up to a second, which the phase then measured
    // as the server's latency (p99 900 ms with the server idle at the time). The pool starts sized.
    ThreadPool.GetMinThreads(out var minWorkers, out var minIo);
    ThreadPool.SetMinThreads(Math.Max(minWorkers, 64), Math.Max(minIo, 64));
    return args[0] switch
    {
        "run" => await Commands.RunAsync(opts),
        "gateway" => await Commands.GatewayAsync(opts),
        "report" => Report.Write(opts),
        "cluster" => await Commands.ClusterAsync(opts),
        "cluster-report" => ClusterReport.Write(opts),
        "gateway-cluster" => await Commands.GatewayClusterAsync(opts),
        "gateway-cluster-report" => Commands.GatewayClusterReport(opts),
        _ => throw new ArgumentException($"unknown command '{args[0]}'"),
    };
}
catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or HttpRequestException or PlatformNotSupportedException or IOException)
{
    Console.Error.WriteLine($"loadgen: {e.Message}");
    return 1;
}

internal sealed class Options
{
    private readonly Dictionary<string, string> _values = new(StringComparer.Ordinal);

    public static Options Parse(IEnumerable<string> args)
    {
        var o = new Options();
        string? key = null;
        foreach (var a in args)
        {
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                if (key is not null)
                {
                    o._values[key] = "true";
                }

                key = a[2..];
            }
            else if (key is not null)
            {
                o._values[key] = a;
                key = null;
            }
            else
            {
                throw new ArgumentException($"unexpected argument '{a}'");
            }
        }

        if (key is not null)
        {
            o._values[key] = "true";
        }

        return o;
    }

    public string Str(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;

    public string? Str(string name) => _values.GetValueOrDefault(name);

    public int Int(string name, int fallback) => _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public int? IntOrNull(string name) => _values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture) : null;

    public int[] Ints(string name, string fallback) =>
        [.. Str(name, fallback).Split(',', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
}

internal static partial class Commands
{
    private static readonly HttpClient s_http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
    {
        Timeout = TimeSpan.FromSeconds(120),
    };

    private static JsonObject Header(Options o, string scenario)
    {
        return new JsonObject
        {
            ["scenario"] = scenario,
            ["server"] = o.Str("server", "unknown"),
            ["rep"] = o.Int("rep", 1),
            ["startedAt"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["loadAvg"] = LoadAvg(),
            ["clientThreads"] = o.Int("threads", DefaultThreads()),
            ["clientProcessors"] = Environment.ProcessorCount,
        };
    }

    private static int DefaultThreads() => Math.Max(2, Environment.ProcessorCount);

    public static string LoadAvg()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static async Task<JsonNode?> StatsAsync(string url)
    {
        var text = await s_http.GetStringAsync(url + "/bench/stats");
        return JsonNode.Parse(text);
    }

    private static async Task WaitUpAsync(string url, string path, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                using var response = await s_http.GetAsync(url + path);
                return;
            }
            catch (HttpRequestException) when (sw.Elapsed < timeout)
            {
                await Task.Delay(200);
            }
        }
    }

    private static (string Host, int Port) HostPort(string url)
    {
        var u = new Uri(url);
        return (u.Host, u.Port);
    }

    /// <summary>Scenarios 1–4 against one server that implements the /bench endpoints.</summary>
    public static async Task<int> RunAsync(Options o)
    {
        var url = o.Str("url", "http://127.0.0.1:3200").TrimEnd('/');
        var clients = o.Int("clients", 10_000);
        var fanout = o.Ints("fanout", "1000,5000,10000").Where(s => s <= clients).Order().ToArray();
        var broadcasts = o.Int("broadcasts", 200);
        var batch = o.Int("batch", 1);
        var fixedRate = o.Int("fixed-rate", 20);
        var fixedSeconds = o.Int("fixed-seconds", 10);
        var concurrency = o.Int("concurrency", 100);
        var rampRate = o.Int("ramp-rate", 0);
        var settle = o.Int("settle", 3);
        var pid = o.IntOrNull("server-pid");
        var idle = TimeSpan.FromSeconds(o.Int("idle-timeout", 5));
        var max = TimeSpan.FromSeconds(o.Int("max-burst-seconds", 120));
        var msgpack = Engine.IsMessagePack(o.Str("parser", "json"));
        var result = Header(o, "socketio");
        result["parser"] = msgpack ? "msgpack" : "json";
        var (host, port) = HostPort(url);

        await WaitUpAsync(url, "/bench/stats", TimeSpan.FromSeconds(60));
        var before = await StatsAsync(url);
        result["statsBefore"] = before;
        using var engine = new Engine(host, port, o.Int("threads", DefaultThreads()), o.Int("source-addrs", 1), msgpack);
        var cpu = new CpuMeter(pid);

        // (4) connect rate: handshake + namespace connect (auth) + join, bounded concurrency, on
        // the server as it starts (cold: its JIT compiles as the first clients come in)
        var connectTimeout = TimeSpan.FromSeconds(o.Int("connect-timeout", 120));
        var connect = MeasureConnect(engine, cpu, clients, concurrency, rampRate, connectTimeout);
        result["connect"] = connect;
        var ready = (int)connect["ready"]!;
        var failed = (int)connect["failed"]!;
        Console.Error.WriteLine($"[{o.Str("server", "?")}] connect (cold): {ready}/{clients} ready in {connect["seconds"]} s ({connect["connectsPerSec"]}/s), failed {failed}");
        if (ready == 0)
        {
            result["error"] = "no client connected";
            Write(o, result);
            return 1;
        }

        // (3) idle memory per connected and joined client
        Thread.Sleep(TimeSpan.FromSeconds(settle));
        var after = await StatsAsync(url);
        result["statsAfter"] = after;
        var rss0 = before?["rss"]?.GetValue<long>() ?? 0;
        var rss1 = after?["rss"]?.GetValue<long>() ?? 0;
        result["memory"] = new JsonObject
        {
            ["clients"] = ready,
            ["rssBefore"] = rss0,
            ["rssAfter"] = rss1,
            ["bytesPerClient"] = Math.Round((rss1 - rss0) / (double)ready),
        };
        Console.Error.WriteLine($"[{o.Str("server", "?")}] memory: {(rss1 - rss0) / (double)ready / 1024:F1} KB RSS per joined client");

        // rooms of the smaller fan-out sizes: the first S clients join one more room each
        foreach (var size in fanout.Where(s => s < clients))
        {
            engine.JoinExtra("f" + size, size, TimeSpan.FromSeconds(60));
        }

        // warm-up (not recorded): JIT tiers and buffers settle before anything is measured
        var burstId = 100;
        var warmup = o.Int("warmup", 50);
        if (warmup > 0)
        {
            var id = burstId++;
            var w = Burst.Measure(engine, cpu, [.. engine.All.Where(c => c.State == ConnState.Ready)], warmup, id,
                () => s_http.GetStringAsync($"{url}/bench/burst?project=all&count={warmup}&rate=0&batch={batch}&burstId={id}"), idle, max);
            result["warmup"] = w;
        }

        // (1) fan-out, as fast as possible
        var fan = new JsonArray();
        foreach (var size in fanout)
        {
            Thread.Sleep(500);
            var project = size < clients ? "f" + size : "all";
            var targets = engine.All.Where(c => c.Index < size && c.State == ConnState.Ready).ToList();
            var id = burstId++;
            var m = Burst.Measure(engine, cpu, targets, broadcasts, id,
                () => s_http.GetStringAsync($"{url}/bench/burst?project={project}&count={broadcasts}&rate=0&batch={batch}&burstId={id}"), idle, max);
            m["clients"] = size;
            m["batch"] = batch;
            fan.Add(m);
            Console.Error.WriteLine($"[{o.Str("server", "?")}] fan-out {size}: {m["deliveriesPerSec"]}/s p50 {m["latencyP50Ms"]} ms p99 {m["latencyP99Ms"]} ms losses {m["losses"]} (client cpu {m["clientCpuPct"]} %, server cpu {m["serverCpuPct"]} %)");
        }

        result["fanout"] = fan;

        // (2) fixed offered rate to every client
        if (fixedRate > 0 && fixedSeconds > 0)
        {
            Thread.Sleep(500);
            var count = fixedRate * fixedSeconds;
            var targets = engine.All.Where(c => c.State == ConnState.Ready).ToList();
            var id = burstId++;
            var m = Burst.Measure(engine, cpu, targets, count, id,
                () => s_http.GetStringAsync($"{url}/bench/burst?project=all&count={count}&rate={fixedRate}&batch=1&burstId={id}"), idle, max + TimeSpan.FromSeconds(fixedSeconds));
            m["rate"] = fixedRate;
            m["offeredSeconds"] = fixedSeconds;
            result["fixed"] = m;
            Console.Error.WriteLine($"[{o.Str("server", "?")}] fixed {fixedRate}/s x {fixedSeconds} s to {targets.Count}: p50 {m["latencyP50Ms"]} ms p99 {m["latencyP99Ms"]} ms losses {m["losses"]}, done in {m["seconds"]} s");
        }

        result["disconnectedDuringRun"] = engine.FailedLater;
        result["fatal"] = engine.FatalError;
        engine.CloseAll();

        // (4) again on the warm server: every client above is gone (the server is asked until it
        // counts none), then as many new ones connect the same way
        if (o.Int("warm-connect", 1) != 0 && engine.FatalError is null)
        {
            var (released, left) = await WaitClientsGoneAsync(url, TimeSpan.FromSeconds(60));
            Console.Error.WriteLine($"[{o.Str("server", "?")}] every client released in {released:F2} s ({left} left); connecting again in {o.Int("warm-settle", settle)} s");
            Thread.Sleep(TimeSpan.FromSeconds(o.Int("warm-settle", settle)));
            using var again = new Engine(host, port, o.Int("threads", DefaultThreads()), o.Int("source-addrs", 1), msgpack);
            var warm = MeasureConnect(again, cpu, clients, concurrency, rampRate, connectTimeout);
            warm["serverClientsBefore"] = left;
            warm["releaseSeconds"] = Math.Round(released, 3);
            result["connectWarm"] = warm;
            Console.Error.WriteLine($"[{o.Str("server", "?")}] connect (warm): {warm["ready"]}/{clients} ready in {warm["seconds"]} s ({warm["connectsPerSec"]}/s), failed {warm["failed"]}");
            again.CloseAll();
        }

        result["loadAvgEnd"] = LoadAvg();
        Write(o, result);
        if (engine.FatalError is not null)
        {
            return 1;
        }

        return Strict(o, result, failed, [.. fan.Select(f => f!.AsObject()), .. result["fixed"] is JsonObject fixedResult ? [fixedResult] : Array.Empty<JsonObject>()]);
    }

    /// <summary>Scenario 4 on <paramref name="engine"/>: opens the clients and measures how fast they become ready.</summary>
    private static JsonObject MeasureConnect(Engine engine, CpuMeter cpu, int clients, int concurrency, int rampRate, TimeSpan timeout, Func<int, (string Auth, string[] Rooms)>? describe = null)
    {
        cpu.Start();
        var (secs, ready, failed) = engine.Connect(clients, concurrency, rampRate, describe ?? (_ => ("{\"token\":\"bench\"}", ["all"])), timeout);
        var (connCpu, connServerCpu) = cpu.Stop();
        var handshake = new Histogram();
        foreach (var c in engine.All.Where(c => c.State == ConnState.Ready))
        {
            handshake.Record((long)(Clock.Seconds(c.StartTs, c.ReadyTs) * 1e6));
        }

        return new JsonObject
        {
            ["clients"] = clients,
            ["concurrency"] = concurrency,
            ["rampRate"] = rampRate,
            ["ready"] = ready,
            ["failed"] = failed,
            ["seconds"] = Math.Round(secs, 3),
            ["connectsPerSec"] = secs > 0 ? Math.Round(ready / secs) : 0,
            ["handshakeP50Ms"] = Math.Round(handshake.Quantile(0.5) / 1000, 3),
            ["handshakeP99Ms"] = Math.Round(handshake.Quantile(0.99) / 1000, 3),
            ["clientCpuPct"] = Math.Round(connCpu, 1),
            ["serverCpuPct"] = connServerCpu is { } scpu ? Math.Round(scpu, 1) : null,
            ["firstErrors"] = new JsonArray([.. engine.All.Where(c => c.Error is not null).Select(c => c.Error).Distinct().Take(5).Select(e => (JsonNode?)e)]),
        };
    }

    /// <summary>Asks the server's /bench/stats until it counts no client (or the timeout passes): (seconds waited, clients it still counts).</summary>
    private static async Task<(double Seconds, long Left)> WaitClientsGoneAsync(string url, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var left = (await StatsAsync(url))?["clients"]?.GetValue<long>() ?? 0;
            if (left == 0 || sw.Elapsed > timeout)
            {
                return (sw.Elapsed.TotalSeconds, left);
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Scenario 5: the gateway end to end, producers publishing through the HTTP API, then through the in-process API; then the log is read back.</summary>
    public static async Task<int> GatewayAsync(Options o)
    {
        var url = o.Str("url", "http://127.0.0.1:3001").TrimEnd('/');
        var projects = o.Int("projects", 1000);
        var perProject = o.Int("per-project", 10);
        var events = o.Int("events", 10);
        var producers = o.Int("producers", 32);
        var secret = o.Str("jwt-secret") ?? throw new ArgumentException("--jwt-secret is required");
        var apiKey = o.Str("api-key") ?? throw new ArgumentException("--api-key is required");
        var pid = o.IntOrNull("server-pid");
        var clients = projects * perProject;
        var result = Header(o, "gateway");
        var (host, port) = HostPort(url);
        await WaitUpAsync(url, "/healthz", TimeSpan.FromSeconds(90));
        var rss0 = CpuMeter.Rss(pid);

        var tokens = new string[clients];
        for (var i = 0; i < clients; i++)
        {
            tokens[i] = Jwt.Mint(secret, $"bench-user-{i}", $"bench user {i}");
        }

        using var engine = new Engine(host, port, o.Int("threads", DefaultThreads()), o.Int("source-addrs", 1));
        var cpu = new CpuMeter(pid);
        var connect = MeasureConnect(engine, cpu, clients, o.Int("concurrency", 100), o.Int("ramp-rate", 0), TimeSpan.FromSeconds(o.Int("connect-timeout", 180)),
            i => ($"{{\"token\":\"{tokens[i]}\"}}", [$"bench-{i / perProject}"]));
        result["connect"] = connect;
        var ready = (int)connect["ready"]!;
        var failed = (int)connect["failed"]!;
        Console.Error.WriteLine($"[gateway] connect: {ready}/{clients} ready in {connect["seconds"]} s, failed {failed}");
        Thread.Sleep(TimeSpan.FromSeconds(o.Int("settle", 2)));
        var rss1 = CpuMeter.Rss(pid);
        result["memory"] = new JsonObject { ["rssBefore"] = rss0, ["rssAfter"] = rss1, ["bytesPerClient"] = rss0 is { } a && rss1 is { } b && ready > 0 ? Math.Round((b - a) / (double)ready) : null };

        // producers: project p belongs to producer p % producers, which posts seq 0..events-1 to
        // each of its projects in order (so each room's order is defined), one event per POST or
        // `batch` consecutive events of the project per POST (a JSON array)
        var logged = 0;
        var bursts = new List<JsonObject>();
        var targets = engine.All.Where(c => c.State == ConnState.Ready).ToList();
        static string Event(int seq, int burstId) => GatewayEvent(seq, burstId, Clock.NowMs());
        async Task<(int Accepted, int Rejected, string? FirstRejection, double Seconds)> PostAllAsync(string path, int count, int burstId, int batch)
        {
            var accepted = 0;
            var rejected = 0;
            string? firstRejection = null;
            var watch = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, producers).Select(async w =>
            {
                for (var seq = 0; seq < count; seq += batch)
                {
                    for (var p = w; p < projects; p += producers)
                    {
                        var n = Math.Min(batch, count - seq);
                        var body = batch == 1 ? Event(seq, burstId) : "[" + string.Join(",", Enumerable.Range(seq, n).Select(s => Event(s, burstId))) + "]";
                        using var request = new HttpRequestMessage(HttpMethod.Post, $"{url}{path}/bench-{p}/events")
                        {
                            Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
                        };
                        request.Headers.Add("X-Api-Key", apiKey);
                        using var response = await s_http.SendAsync(request);
                        if (response.IsSuccessStatusCode)
                        {
                            Interlocked.Add(ref accepted, n);
                        }
                        else
                        {
                            Interlocked.Add(ref rejected, n);
                            var text = await response.Content.ReadAsStringAsync();
                            Interlocked.CompareExchange(ref firstRejection, $"{(int)response.StatusCode} {text[..Math.Min(200, text.Length)]}", null);
                        }
                    }
                }
            }));
            return (accepted, rejected, firstRejection, watch.Elapsed.TotalSeconds);
        }

        // the ceiling of the HTTP layer first: the same POSTs to an endpoint that reads them and answers 202
        var ceiling = await PostAllAsync("/bench/noop", events, 0, 1);
        var ceilingPerSec = ceiling.Seconds > 0 ? Math.Round(ceiling.Accepted / ceiling.Seconds) : 0;
        result["httpCeiling"] = new JsonObject { ["posted"] = ceiling.Accepted + ceiling.Rejected, ["accepted"] = ceiling.Accepted, ["seconds"] = Math.Round(ceiling.Seconds, 3), ["postsPerSec"] = ceilingPerSec, ["firstRejection"] = ceiling.FirstRejection };
        Console.Error.WriteLine($"[gateway] do-nothing endpoint (ceiling): {ceiling.Accepted} POSTs answered ({ceilingPerSec}/s)");

        var httpBatches = (o.Str("http-batches") ?? "1,10,100").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
        var batchEvents = o.Int("batch-events", events);
        foreach (var batch in httpBatches)
        {
            Thread.Sleep(300);
            var count = batch == 1 ? events : Math.Max(batchEvents, batch);
            var burstId = 500 + (batch == 1 ? 0 : 10 + batch);
            (int Accepted, int Rejected, string? FirstRejection, double Seconds) posted = default;
            var m = Burst.Measure(engine, cpu, targets, count, burstId, async () =>
            {
                posted = await PostAllAsync("/api/projects", count, burstId, batch);
                return "{}";
            }, TimeSpan.FromSeconds(o.Int("idle-timeout", 5)), TimeSpan.FromSeconds(o.Int("max-burst-seconds", 180)));
            m.Remove("trigger");
            m["projects"] = projects;
            m["clientsPerProject"] = perProject;
            m["producers"] = producers;
            m["batch"] = batch;
            m["posted"] = posted.Accepted + posted.Rejected;
            m["accepted"] = posted.Accepted;
            m["rejected"] = posted.Rejected;
            m["firstRejection"] = posted.FirstRejection;
            m["publishSeconds"] = Math.Round(posted.Seconds, 3);
            m["publishesPerSec"] = posted.Seconds > 0 ? Math.Round(posted.Accepted / posted.Seconds) : 0;
            m["ofCeiling"] = batch == 1 && ceilingPerSec > 0 ? Math.Round((double)m["publishesPerSec"]! / ceilingPerSec, 3) : null;
            logged += posted.Accepted;
            result[batch == 1 ? "gateway" : $"gatewayBatch{batch}"] = m;
            bursts.Add(m);
            Console.Error.WriteLine($"[gateway] HTTP API, {batch} event(s) per POST: {posted.Accepted} events accepted ({m["publishesPerSec"]}/s{(batch == 1 ? $", {m["ofCeiling"]} of the ceiling" : string.Empty)}, {posted.Rejected} rejected), {m["received"]}/{m["expected"]} deliveries ({m["deliveriesPerSec"]}/s), p50 {m["latencyP50Ms"]} ms p99 {m["latencyP99Ms"]} ms, losses {m["losses"]}");
        }

        // the same events again, published inside the gateway's process through EventPublisher
        // (the in-process API) by as many producers, to the same rooms; the host's
        // /bench/publish runs them (bench/GatewayBench)
        var inProcessEvents = o.Int("inprocess-events", events);
        foreach (var batch in inProcessEvents > 0 ? (o.Str("inprocess-batches") ?? "1,100").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList() : [])
        {
            Thread.Sleep(500);
            var count = batch == 1 ? inProcessEvents : Math.Max(batchEvents, batch);
            var inProcessBurst = 501 + (batch == 1 ? 0 : 20 + batch);
            var ip = Burst.Measure(engine, cpu, targets, count, inProcessBurst, () =>
                BenchPublishAsync(url, apiKey, $"prefix=bench-&projects={projects}&events={count}&producers={producers}&burstId={inProcessBurst}&batch={batch}"), TimeSpan.FromSeconds(o.Int("idle-timeout", 5)), TimeSpan.FromSeconds(o.Int("max-burst-seconds", 180)));
            var answer = ip["trigger"];
            ip.Remove("trigger");
            ip["projects"] = projects;
            ip["clientsPerProject"] = perProject;
            ip["producers"] = producers;
            ip["batch"] = batch;
            ip["accepted"] = Num(answer?["published"]);
            ip["rejected"] = Num(answer?["rejected"]);
            ip["firstRejection"] = answer?["firstRejection"]?.DeepClone();
            ip["publishSeconds"] = Num(answer?["seconds"]);
            ip["publishesPerSec"] = Num(answer?["publishesPerSec"]);
            logged += (int)(Num(answer?["published"]) ?? 0);
            result[batch == 1 ? "gatewayInProcess" : $"gatewayInProcessBatch{batch}"] = ip;
            bursts.Add(ip);
            Console.Error.WriteLine($"[gateway] in-process API, {batch} event(s) per call: {ip["accepted"]} events published ({ip["publishesPerSec"]}/s, {ip["rejected"]} rejected), {ip["received"]}/{ip["expected"]} deliveries ({ip["deliveriesPerSec"]}/s), p50 {ip["latencyP50Ms"]} ms p99 {ip["latencyP99Ms"]} ms, losses {ip["losses"]}");
        }

        // the fixed-rate run (the issue 13 bar): single events POSTed at a fixed aggregate rate,
        // round-robin over every project, on an absolute timetable (see FixedRate)
        var fixedRate = o.Int("fixed-rate", 0);
        var fixedSeconds = o.Int("fixed-seconds", 10);
        if (fixedRate > 0 && fixedSeconds > 0)
        {
            Thread.Sleep(500);
            var fx = FixedRate(engine, cpu, targets, url, apiKey, projects, fixedRate, fixedSeconds, TimeSpan.FromSeconds(o.Int("fixed-drain", 10)),
                TimeSpan.FromSeconds(o.Int("idle-timeout", 5)), 700);
            logged += (int)fx["accepted"]!;
            result["gatewayFixedRate"] = fx;
            bursts.Add(fx);
            Console.Error.WriteLine($"[gateway] fixed rate {fixedRate}/s over {projects} projects for {fx["scheduledSeconds"]} s: {fx["accepted"]}/{fx["posted"]} events accepted ({fx["achievedPerSec"]}/s achieved, {fx["rejected"]} rejected, {fx["unanswered"]} unanswered, sender lag max {fx["senderLagMaxMs"]} ms), {fx["received"]}/{fx["expected"]} deliveries, p50 {fx["latencyP50Ms"]} ms p99 {fx["latencyP99Ms"]} ms max {fx["latencyMaxMs"]} ms from the scheduled send, losses {fx["losses"]}, duplicate/out of order {fx["outOfOrder"]}");

            // the same timetable inside the gateway's process (bench/GatewayBench /bench/publish?rate=R)
            if (o.Int("fixed-inprocess", 1) != 0)
            {
                Thread.Sleep(500);
                var ip = FixedRateInProcess(engine, cpu, targets, url, apiKey, projects, fixedRate, fixedSeconds, TimeSpan.FromSeconds(o.Int("fixed-drain", 10)),
                    TimeSpan.FromSeconds(o.Int("idle-timeout", 5)), 701);
                logged += (int)(Count(ip["accepted"]) ?? 0);
                result["gatewayInProcessFixedRate"] = ip;
                bursts.Add(ip);
                Console.Error.WriteLine($"[gateway] in-process fixed rate {fixedRate}/s over {projects} projects for {ip["scheduledSeconds"]} s: {ip["accepted"]}/{ip["posted"]} events published ({ip["achievedPerSec"]}/s achieved, {ip["rejected"]} rejected, {ip["unanswered"]} unanswered, sender lag max {ip["senderLagMaxMs"]} ms), {ip["received"]}/{ip["expected"]} deliveries, p50 {ip["latencyP50Ms"]} ms p99 {ip["latencyP99Ms"]} ms max {ip["latencyMaxMs"]} ms from the scheduled call, losses {ip["losses"]}, duplicate/out of order {ip["outOfOrder"]}");
            }
        }

        // every accepted event is in its project's log, in order, without a gap
        var log = await ReadLogBackAsync(url, apiKey, projects, logged);
        result["log"] = log;
        Console.Error.WriteLine($"[gateway] log: {log["events"]} events kept of {logged} accepted, {log["projectsWithGaps"]} project(s) with a gap");

        result["disconnectedDuringRun"] = engine.FailedLater;
        result["loadAvgEnd"] = LoadAvg();
        engine.CloseAll();
        Write(o, result);
        if (ready == 0)
        {
            return 1;
        }

        var strict = Strict(o, result, failed, bursts);
        foreach (var (key, name) in new[] { ("gatewayFixedRate", "fixed-rate run"), ("gatewayInProcessFixedRate", "in-process fixed-rate run") })
        {
            if (strict == 0 && o.Str("strict") is not null && result[key] is JsonObject f
                && (Count(f["losses"]) is not 0 || Count(f["outOfOrder"]) is not 0 || Count(f["rejected"]) is not 0 || Count(f["unanswered"]) is not 0 || Count(f["received"]) != Count(f["expected"])))
            {
                Console.Error.WriteLine($"loadgen --strict [gateway]: the {name} lost, duplicated or reordered events: losses {f["losses"]}, duplicate/out of order {f["outOfOrder"]}, rejected {f["rejected"]} ({f["firstRejection"]}), unanswered {f["unanswered"]} ({f["firstFailure"]}), deliveries {f["received"]}/{f["expected"]}");
                strict = 3;
            }
        }

        if (strict != 0)
        {
            return strict;
        }

        if (strict == 0 && o.Str("strict") is not null && (result["log"]?["missingEvents"] is not JsonNode missing || (double)missing != 0 || Num(result["log"]?["projectsWithGaps"]) is not 0))
        {
            Console.Error.WriteLine($"loadgen --strict [gateway]: the log does not hold every accepted event in order: {result["log"]?.ToJsonString()}");
            return 3;
        }

        return strict;
    }

    /// <summary>With --strict (the smoke mode): every client connected and every burst delivered something.</summary>
    private static int Strict(Options o, JsonObject result, int failedClients, IEnumerable<JsonObject> bursts)
    {
        if (o.Str("strict") is null)
        {
            return 0;
        }

        var problems = new List<string>();
        if (failedClients > 0)
        {
            problems.Add($"{failedClients} client(s) failed to connect: {result["connect"]?["firstErrors"]?.ToJsonString()}");
        }

        foreach (var b in bursts)
        {
            if ((long?)b["received"] is null or 0)
            {
                problems.Add($"a burst to {b["recipients"]} clients delivered nothing");
            }

            if (b["triggerError"] is JsonNode error)
            {
                problems.Add($"trigger failed: {error}");
            }
        }

        foreach (var p in problems)
        {
            Console.Error.WriteLine($"loadgen --strict [{o.Str("server", "?")}]: {p}");
        }

        return problems.Count == 0 ? 0 : 3;
    }

    private static double? Num(JsonNode? n) => n is JsonValue v && v.TryGetValue(out double d) ? d : null;

    private static void Write(Options o, JsonObject result)
    {
        var text = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        if (o.Str("out") is { } path)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
            File.WriteAllText(path, text);
        }
        else
        {
            Console.WriteLine(text);
        }
    }
}
