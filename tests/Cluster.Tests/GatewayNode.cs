using System.Diagnostics;
using System.Text;
using Builder.Auth;

namespace Cluster.Tests;

/// <summary>
/// One gateway node as operators run it: its own process (<c>dotnet Builder.Gateway.dll</c>, the
/// Production profile, configuration from environment variables) on a free loopback port, a
/// cluster node on the given Redis.
/// </summary>
public sealed class GatewayNode : IAsyncDisposable
{
    public const string Secret = "cluster-tests-secret-0123456789-abcdefghijk";
    public const string Issuer = "cluster-issuer";
    public const string Audience = "cluster-aud";
    public const string ApiKey = "cluster-ingest-key-0123456789";

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private GatewayNode(Process process, int port)
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

    /// <summary>Starts a cluster node on <paramref name="redis"/> and waits until it answers /healthz.</summary>
    public static async Task<GatewayNode> StartAsync(string redis, IDictionary<string, string>? settings = null)
    {
        var port = RedisProcess.FreePort();
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
            ["Builder__Redis__Configuration"] = redis,
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
        var node = new GatewayNode(process, port);
        process.OutputDataReceived += (_, e) => node.Append(e.Data);
        process.ErrorDataReceived += (_, e) => node.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await Deadline.UntilAsync(async () =>
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"the gateway exited with {process.ExitCode}:\n{node.Output}");
                }

                try
                {
                    using var response = await node.Http.GetAsync("healthz");
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
            await node.DisposeAsync();
            throw;
        }

        return node;
    }

    /// <summary>Three nodes on one Redis, started side by side.</summary>
    public static async Task<GatewayNode[]> StartClusterAsync(string redis, int count = 3, IDictionary<string, string>? settings = null) =>
        await Task.WhenAll(Enumerable.Range(0, count).Select(_ => StartAsync(redis, settings)));

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
        var testDir = AppContext.BaseDirectory; // tests/Cluster.Tests/bin/<Configuration>/net10.0/
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

    /// <summary>A user token signed with the nodes' secret.</summary>
    public static string Token(string userId, params string[] projects) =>
        TokenIssuer.Issue(Secret, userId, userId + "_name", projects, TimeSpan.FromHours(1), TimeProvider.System, null, Issuer, Audience);

    public async Task<HttpResponseMessage> PublishAsync(string projectId, string type, string payloadJson)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/events")
        {
            Content = new StringContent($"{{\"type\":\"{type}\",\"payload\":{payloadJson}}}", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Api-Key", ApiKey);
        return await Http.SendAsync(request);
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
