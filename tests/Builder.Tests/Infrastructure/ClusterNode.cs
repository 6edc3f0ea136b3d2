using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Builder.Auth;

namespace Builder.Tests.Infrastructure;

/// <summary>
/// A gateway cluster node in its own process (<c>dotnet Builder.Gateway.dll</c>, the Production
/// profile, configuration from environment variables, as tests/Abuse.Tests starts it) on a free
/// loopback port, with <c>Builder:Redis:Configuration</c> set: several of them on one Redis form a
/// cluster. <see cref="Kill"/> is kill -9.
/// </summary>
public sealed class ClusterNode : IAsyncDisposable
{
    public const string Secret = "cluster-tests-secret-0123456789-abcdefghijkl";
    public const string Issuer = "cluster-issuer";
    public const string Audience = "cluster-aud";
    public const string ApiKey = "cluster-ingest-key-0123456789";

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ClusterNode(Process process, int port)
    {
        _process = process;
        Port = port;
        Url = new Uri($"http://127.0.0.1:{port}/");
        Http = new HttpClient { BaseAddress = Url, Timeout = TimeSpan.FromSeconds(30) };
    }

    public int Port { get; }

    public Uri Url { get; }

    public HttpClient Http { get; }

    /// <summary>What the node wrote to stdout and stderr so far (for failure messages).</summary>
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

    public static async Task<ClusterNode> StartAsync(string redisConfiguration, IDictionary<string, string>? settings = null)
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
            ["Urls"] = $"http://127.0.0.1:{port}",
            ["Builder__Jwt__Secret"] = Secret,
            ["Builder__Jwt__Issuer"] = Issuer,
            ["Builder__Jwt__Audience"] = Audience,
            ["Builder__Redis__Configuration"] = redisConfiguration,
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
        var node = new ClusterNode(process, port);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Until.TrueAsync(async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"the gateway exited with {process.ExitCode}:\n{node.Output}");
                }

                try
                {
                    using var response = await node.Http.GetAsync("readyz");
                    return response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(90), "the node answering /readyz");
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }

        return node;
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

    private static string GatewayDll()
    {
        var testDir = AppContext.BaseDirectory; // tests/Builder.Tests/bin/<Configuration>/net10.0/
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

    /// <summary>A user token signed with the cluster's secret.</summary>
    public static string Token(string userId, params string[] projects) =>
        TokenIssuer.Issue(Secret, userId, userId + "_name", projects, TimeSpan.FromHours(1), TimeProvider.System, null, Issuer, Audience);

    /// <summary>A Socket.IO client of this node's /builder namespace (WebSocket only: no sticky session needed).</summary>
    public BuilderClient Client(string userId, params string[] projects) =>
        new(new Uri(Url, "/builder"), Token(userId, projects), SocketIOClient.Transport.TransportProtocol.WebSocket);

    /// <summary>A request with the ingest API key.</summary>
    public async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body, options: s_json);
        }

        request.Headers.Add("X-Api-Key", ApiKey);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    public bool HasExited => _process.HasExited;

    /// <summary>kill -9: the node stops at once, renewing nothing and releasing nothing.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: true);
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
public static class Until
{
    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
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
}
