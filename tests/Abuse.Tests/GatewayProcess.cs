using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Builder.Auth;

namespace Abuse.Tests;

/// <summary>
/// The gateway as operators run it: its own process (<c>dotnet Builder.Gateway.dll</c>, the
/// Production profile, configuration from environment variables) on a free loopback port, so that
/// the memory and the sessions <c>/metrics</c> reports are the gateway's alone.
/// </summary>
public sealed class GatewayProcess : IAsyncDisposable
{
    public const string Secret = "abuse-tests-secret-0123456789-abcdefghijkl";
    public const string Issuer = "abuse-issuer";
    public const string Audience = "abuse-aud";
    public const string ApiKey = "abuse-ingest-key-0123456789";

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private GatewayProcess(Process process, int port)
    {
        _process = process;
        Port = port;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public int Port { get; }

    public HttpClient Http { get; }

    /// <summary>What the gateway wrote to stdout and stderr so far (for failure messages).</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<GatewayProcess> StartAsync(IDictionary<string, string>? settings = null)
    {
        var port = FreePort();
        var dll = GatewayDll();
        var info = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll },
            WorkingDirectory = Path.GetDirectoryName(dll)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_ENVIRONMENT"] = "Production",
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["Urls"] = $"http://127.0.0.1:{port}", // appsettings.json names a Urls of its own
            ["Builder__Jwt__Secret"] = Secret,
            ["Builder__Jwt__Issuer"] = Issuer,
            ["Builder__Jwt__Audience"] = Audience,
            ["Builder__Store__Provider"] = "memory",
            ["Builder__Ingest__ApiKeys__0"] = ApiKey,
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            env[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        foreach (var (key, value) in env)
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        var gateway = new GatewayProcess(process, port);
        process.OutputDataReceived += (_, e) => gateway.Append(e.Data);
        process.ErrorDataReceived += (_, e) => gateway.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Deadline.UntilAsync(async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"the gateway exited with {process.ExitCode}:\n{gateway.Output}");
                }

                try
                {
                    using var response = await gateway.Http.GetAsync("healthz");
                    return response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(60), "the gateway answering /healthz");
        }
        catch
        {
            await gateway.DisposeAsync();
            throw;
        }

        return gateway;
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length < 200_000)
            {
                _output.AppendLine(line);
            }
        }
    }

    /// <summary>The gateway's dll from its own output folder (same configuration as these tests).</summary>
    private static string GatewayDll()
    {
        var testDir = AppContext.BaseDirectory; // tests/Abuse.Tests/bin/<Configuration>/net10.0/
        var configuration = new DirectoryInfo(testDir).Parent!.Name;
        var dir = new DirectoryInfo(testDir);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Builder.slnx")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            throw new InvalidOperationException("the repository root (Builder.slnx) was not found above " + testDir);
        }

        var dll = Path.Combine(dir.FullName, "src", "Builder.Gateway", "bin", configuration, "net10.0", "Builder.Gateway.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing: build the solution first");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>A user token signed with the gateway's secret.</summary>
    public static string Token(string userId, params string[] projects) =>
        TokenIssuer.Issue(Secret, userId, userId + "_name", projects, TimeSpan.FromHours(1), TimeProvider.System, null, Issuer, Audience);

    /// <summary>
    /// The gateway's /metrics (Prometheus text of the OpenTelemetry exporter), as name (with its
    /// labels, in order, but the exporter's otel_scope_* ones) → value: <c>builder_engine_sessions</c>,
    /// <c>builder_events_published_total{type="build:started"}</c>.
    /// </summary>
    public async Task<Dictionary<string, double>> MetricsAsync() => ParseMetrics(await Http.GetStringAsync("metrics"));

    /// <summary>Prometheus text as name (with its labels but otel_scope_*) → value.</summary>
    public static Dictionary<string, double> ParseMetrics(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            if (space > 0 && double.TryParse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                values[WithoutScopeLabels(line[..space])] = value;
            }
        }

        return values;
    }

    private static string WithoutScopeLabels(string series)
    {
        var open = series.IndexOf('{', StringComparison.Ordinal);
        if (open < 0 || !series.EndsWith('}'))
        {
            return series;
        }

        // label values of this gateway hold no '",' (event types, error codes, scope names)
        var labels = series[(open + 1)..^1].Split("\",", StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.EndsWith('"') ? l : l + "\"")
            .Where(l => !l.StartsWith("otel_scope_", StringComparison.Ordinal))
            .ToList();
        return labels.Count == 0 ? series[..open] : $"{series[..open]}{{{string.Join(',', labels)}}}";
    }

    public async Task<double> MetricAsync(string name) =>
        (await MetricsAsync()).TryGetValue(name, out var v) ? v : throw new InvalidOperationException($"/metrics has no {name}");

    /// <summary>Samples the gateway's resident memory while <paramref name="attack"/> runs; returns the peak growth over <paramref name="baseline"/>.</summary>
    public async Task<double> PeakGrowthAsync(double baseline, Task attack)
    {
        var peak = baseline;
        while (!attack.IsCompleted)
        {
            peak = Math.Max(peak, await MetricAsync("process_resident_memory_bytes"));
            await Task.WhenAny(attack, Task.Delay(100));
        }

        await attack;
        peak = Math.Max(peak, await MetricAsync("process_resident_memory_bytes"));
        return peak - baseline;
    }

    /// <summary>Awaits the end of every session and socket (nothing left behind once the clients are gone).</summary>
    public Task NothingLeftBehindAsync(TimeSpan timeout) =>
        Deadline.UntilAsync(async () => await MetricAsync("builder_engine_sessions") == 0 && await MetricAsync("builder_connected_sockets") == 0, timeout, "every session and socket to end");

    public async Task<HttpResponseMessage> PublishAsync(string projectId, string type, string payloadJson)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/events")
        {
            Content = new StringContent($"{{\"type\":\"{type}\",\"payload\":{payloadJson}}}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Api-Key", ApiKey);
        return await Http.SendAsync(request);
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Kills the gateway at once (SIGKILL, as kill -9: no shutdown code runs) and waits for its end.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}

/// <summary>Awaits a condition with a deadline (never a fixed sleep).</summary>
public static class Deadline
{
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var watch = Stopwatch.StartNew();
        var delay = 10;
        while (true)
        {
            if (await condition())
            {
                return;
            }

            if (watch.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0} s waiting for {what}");
            }

            await Task.Delay(delay);
            delay = Math.Min(delay * 2, 200);
        }
    }

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what);
}
