using System.Diagnostics;
using Builder.Gateway;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Builder.Tests;

/// <summary>Bad configuration stops start-up with a message naming the key.</summary>
public sealed class ConfigurationTests
{
    public static TheoryData<string, string?, string> BadSettings => new()
    {
        { "Builder:Jwt:Secret", "too-short", "Builder:Jwt:Secret" },
        { "Builder:Jwt:PublicKeyFile", "/nonexistent/key.pem", "Builder:Jwt:PublicKeyFile" },
        { "Builder:Cors:Origins:0", "not a url", "Builder:Cors:Origins" },
        { "Builder:Heartbeat:IntervalSeconds", "0", "Builder:Heartbeat:IntervalSeconds" },
        { "Builder:Heartbeat:MaxMissed", "0", "Builder:Heartbeat:MaxMissed" },
        { "Builder:Store:Provider", "mongodb", "Builder:Store:Provider" },
        { "Builder:Ingest:ApiKeys:0", "short", "Builder:Ingest:ApiKeys" },
        { "Builder:Access:CheckUrl", "not-absolute", "Builder:Access:CheckUrl" },
        { "Builder:Runner:MaxConcurrentBuilds", "0", "Builder:Runner:MaxConcurrentBuilds" },
        { "Builder:Store:MaxEventsPerProject", "10", "Builder:Store:MaxEventsPerProject" },
        { "Builder:Redis:AdapterKey", "a#b", "Builder:Redis:AdapterKey" },
        { "Builder:Cluster:IngestLeaseSeconds", "0", "Builder:Cluster:IngestLeaseSeconds" },
        { "Builder:Engine:Cookie", "bad name;", "Builder:Engine:Cookie" },
        { "Builder:Engine:CookieSameSite", "Sometimes", "Builder:Engine:CookieSameSite" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_bad_value_is_refused_naming_its_key(string key, string? value, string named)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = "configuration-tests-secret-0123456789-abcdef",
            ["Builder:Store:Provider"] = "memory",
            [key] = value,
        };
        var ex = Assert.Throws<OptionsValidationException>(() => GatewayApp.Build([], b => b.Configuration.AddInMemoryCollection(settings)));
        Assert.Contains(ex.Failures, f => f.Contains(named, StringComparison.Ordinal));
    }

    public static TheoryData<string?, string?, string?, string> SplittingClusterSettings => new()
    {
        // Redis makes a cluster node: a store of this node only would split its projects
        { "127.0.0.1:6379", null, "memory", "Builder:Cluster:Enabled=false" },
        { "127.0.0.1:6379", "true", "sqlite", "Builder:Store:Provider" },
        // a cluster without Redis, a redis store without Redis or outside a cluster
        { null, "true", null, "Builder:Redis:Configuration" },
        { null, null, "redis", "Builder:Redis:Configuration" },
        { "127.0.0.1:6379", "false", "redis", "Builder:Cluster:Enabled" },
    };

    [Theory]
    [MemberData(nameof(SplittingClusterSettings))]
    public void A_combination_that_would_split_a_project_between_nodes_is_refused_naming_the_keys(string? redis, string? cluster, string? provider, string named)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = "configuration-tests-secret-0123456789-abcdef",
            ["Builder:Redis:Configuration"] = redis,
            ["Builder:Cluster:Enabled"] = cluster,
            ["Builder:Store:Provider"] = provider,
        };
        var ex = Assert.Throws<OptionsValidationException>(() => GatewayApp.Build([], b => b.Configuration.AddInMemoryCollection(settings)));
        Assert.Contains(ex.Failures, f => f.Contains(named, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, null, null, false, "sqlite")]
    [InlineData(null, null, "memory", false, "memory")]
    [InlineData("127.0.0.1:6379", null, null, true, "redis")]
    [InlineData("127.0.0.1:6379", "true", "redis", true, "redis")]
    [InlineData("127.0.0.1:6379", "false", null, false, "sqlite")]
    [InlineData("127.0.0.1:6379", "false", "memory", false, "memory")]
    public void The_accepted_combinations_choose_the_node_kind_and_the_store(string? redis, string? cluster, string? provider, bool clusterNode, string store)
    {
        var options = new BuilderOptions { Jwt = { Secret = "configuration-tests-secret-0123456789-abcdef" } };
        options.Redis.Configuration = redis;
        options.Cluster.Enabled = cluster is null ? null : bool.Parse(cluster);
        options.Store.Provider = provider;
        Assert.Empty(options.Validate());
        Assert.Equal(clusterNode, options.IsClusterNode);
        Assert.Equal(store, options.StoreProvider);
    }

    [Theory]
    [InlineData(null, 1)]
    [InlineData("false", 0)]
    public async Task Memory_IdleTrim_runs_or_leaves_out_the_idle_memory_trimmer(string? idleTrim, int trimmers)
    {
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            if (idleTrim is not null)
            {
                s["Builder:Memory:IdleTrim"] = idleTrim;
            }
        });
        var hosted = gateway.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>();
        Assert.Equal(trimmers, hosted.OfType<EngineIO.IdleMemoryTrimmer>().Count());
    }

    [Theory]
    [InlineData(null, EngineIO.EngineWebSocketMode.ConnectionPipe)]
    [InlineData("Framed", EngineIO.EngineWebSocketMode.Framed)]
    [InlineData("runtime", EngineIO.EngineWebSocketMode.Runtime)]
    public async Task Engine_WebSocketMode_selects_the_WebSocket_path_and_clients_connect_on_it(string? mode, EngineIO.EngineWebSocketMode expected)
    {
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            if (mode is not null)
            {
                s["Builder:Engine:WebSocketMode"] = mode;
            }
        });
        Assert.Equal(expected, gateway.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<SocketIO.SocketIOOptions>>().Value.Engine.WebSocketMode);

        // a WebSocket-only client joins and gets an event on that path
        await using var client = gateway.Client(gateway.Token("alice", ["ws-mode"]));
        await client.ConnectAsync();
        await client.JoinAsync("ws-mode");
        await gateway.PublishAsync("ws-mode", "agent:status:update", new { agentId = "a", agentType = "ui", status = "working" });
        Assert.Equal(1, (await client.NextAsync("agent:status:update")).GetProperty("seq").GetInt64());
    }

    [Fact]
    public void An_unknown_Engine_WebSocketMode_refuses_to_start_naming_the_key()
    {
        var settings = new Dictionary<string, string?>
        {
            ["Builder:Jwt:Secret"] = TestGateway.Secret,
            ["Builder:Store:Provider"] = "memory",
            ["Builder:Engine:WebSocketMode"] = "Turbo",
        };
        var ex = Assert.ThrowsAny<Exception>(() =>
        {
            using var app = GatewayApp.Build([], b => b.Configuration.AddInMemoryCollection(settings));
            _ = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<SocketIO.SocketIOOptions>>().Value;
        });
        Assert.Contains("Builder:Engine:WebSocketMode", ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_gateway_process_exits_with_a_message_naming_the_missing_secret()
    {
        // outside Development no secret is embedded: the real process must refuse to start
        var dll = Path.Combine(AppContext.BaseDirectory, "Builder.Gateway.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { dll, "--urls", "http://127.0.0.1:0" },
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        Assert.Equal(2, process.ExitCode);
        Assert.Contains("Builder:Jwt:Secret", await stderr, StringComparison.Ordinal);
        _ = await stdout;
    }
}
