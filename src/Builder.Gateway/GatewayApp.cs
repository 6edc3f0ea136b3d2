using Builder;
using Builder.Auth;
using Builder.Decisions;
using Builder.Events;
using Builder.Hub;
using Builder.Runner;
using Builder.Runner.Simulation;
using EngineIO;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using SocketIO;

namespace Builder.Gateway;

/// <summary>Builds the gateway application (Program.cs runs it; tests start it on a loopback port).</summary>
public static class GatewayApp
{
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(args);
        configure?.Invoke(builder);

        var options = builder.Configuration.GetSection(BuilderOptions.Section).Get<BuilderOptions>() ?? new BuilderOptions();
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(BuilderOptions.Section, typeof(BuilderOptions), problems);
        }

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(options.Jwt);
        services.TryAddTimeProvider();
        services.AddSingleton<GatewayMetrics>();
        // WebSocket handshakes answered at the connection level (no HTTP connection per socket)
        services.AddEngineIOWebSocketFastPath();
        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.UseEngineIOWebSocketFastPath()));
        services.AddSocketIO(o =>
        {
            o.Engine.Cors = new EngineCorsOptions { Origins = options.Cors.Origins, Credentials = !options.Cors.Origins.Contains("*") };
            o.Engine.MaxPayload = Math.Max(1_000_000, options.Limits.MaxEventBytes * 2);
            o.Engine.AllowRequest = context =>
            {
                // browsers do not apply CORS to WebSocket: check the origin here
                var origin = context.Request.Headers.Origin.ToString();
                var allowed = origin.Length == 0 || o.Engine.Cors.IsAllowed(origin);
                return ValueTask.FromResult(allowed ? null : $"Origin {origin} is not allowed");
            };
            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
            // only /builder is served; a session that joins it neither soon nor at all is closed
            o.ServeMainNamespace = false;
            o.ConnectTimeout = TimeSpan.FromSeconds(options.Limits.ConnectTimeoutSeconds);
            o.Engine.MaxConnectionsPerAddress = options.Limits.MaxConnectionsPerAddress;
            o.Engine.MaxHandshakesPerAddress = options.Limits.MaxHandshakesPerAddress;
            if (!options.Memory.IdleTrim)
            {
                o.IdleMemoryTrim = null;
            }
        });
        if (options.Store.Provider == "memory")
        {
            services.AddSingleton<IEventLog>(_ => new InMemoryEventLog());
            services.AddSingleton<IDecisionStore, InMemoryDecisionStore>();
            services.AddSingleton<IBuildStore, InMemoryBuildStore>();
        }
        else
        {
            var path = Path.IsPathRooted(options.Store.Path) ? options.Store.Path : Path.Combine(builder.Environment.ContentRootPath, options.Store.Path);
            services.AddSingleton(_ => new SqliteStore(path));
            services.AddSingleton<IEventLog>(sp => sp.GetRequiredService<SqliteStore>());
            services.AddSingleton<IDecisionStore>(sp => sp.GetRequiredService<SqliteStore>());
            services.AddSingleton<IBuildStore>(sp => sp.GetRequiredService<SqliteStore>());
        }

        services.AddSingleton(sp => new TokenValidator(options.Jwt, sp.GetRequiredService<TimeProvider>()));
        services.AddHttpClient(nameof(ProjectAccess), c => c.Timeout = TimeSpan.FromSeconds(5));
        services.AddSingleton(sp => new ProjectAccess(options.Access, sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(ProjectAccess)), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ProjectAccess>>()));
        services.AddSingleton(sp => sp.GetRequiredService<SocketIOServer>().Of(BuilderHub.NamespaceName));
        services.AddSingleton(sp => new EventPublisher(sp.GetRequiredService<IEventLog>(), sp.GetRequiredService<SocketIO.Namespace>(), sp.GetRequiredService<TimeProvider>(), options.Limits.MaxEventBytes, sp.GetRequiredService<ILogger<EventPublisher>>()));
        services.AddSingleton<DecisionService>();
        services.AddSingleton<SnapshotBuilder>();
        services.AddSingleton<BuilderHub>();
        services.AddSingleton<ProducerAuth>();
        services.AddSingleton(options.Runner);
        services.AddSingleton(sp => new BuildRunner(
            SimulatedTeam.For,
            SimulatedTeam.DeployerFor,
            sp.GetRequiredService<EventPublisher>(),
            sp.GetRequiredService<DecisionService>(),
            sp.GetRequiredService<IBuildStore>(),
            options.Runner,
            TimeProvider.System,
            sp.GetRequiredService<ILogger<BuildRunner>>()));
        services.AddSingleton<AgentLeaseMonitor>();
        services.AddHostedService<GatewayLifetime>();
        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            services.AddHostedService(sp => new RedisBridge(options.Redis.Configuration, sp.GetRequiredService<EventPublisher>(), sp.GetRequiredService<DecisionService>(), sp.GetRequiredService<GatewayMetrics>(), sp.GetRequiredService<ILogger<RedisBridge>>()));
        }

        var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");
        GatewayEndpoints.Map(app, options);
        return app;
    }

    private static void TryAddTimeProvider(this IServiceCollection services)
    {
        if (!services.Any(d => d.ServiceType == typeof(TimeProvider)))
        {
            services.AddSingleton(TimeProvider.System);
        }
    }
}

/// <summary>Start-up and timers: restores pending decisions, wires metrics, runs the heartbeat.</summary>
internal sealed class GatewayLifetime(BuilderHub hub, DecisionService decisions, EventPublisher publisher, BuildRunner runner, AgentLeaseMonitor leases, SocketIOServer io, GatewayMetrics metrics, BuilderOptions options, TimeProvider time, IServer server, IHostApplicationLifetime lifetime, IConfiguration configuration, ILogger<GatewayLifetime> logger) : IHostedService, IDisposable
{
    private ITimer? _heartbeat;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await decisions.RestoreAsync(cancellationToken);
        await runner.EndInterruptedBuildsAsync(cancellationToken);
        if (configuration["Builder:Runner:PreviewBaseUrl"] is null)
        {
            // previews are served by this gateway: point at the address it really listens on
            lifetime.ApplicationStarted.Register(() =>
            {
                var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
                if (address is not null)
                {
                    options.Runner.PreviewBaseUrl = address.TrimEnd('/') + "/preview";
                }
            });
        }

        // the lease monitor watches publications from its construction on: taking it here creates it
        GC.KeepAlive(leases);
        publisher.Published += e => metrics.Increment("builder_events_published_total", e.Type);
        decisions.Resolved += (_, r) => metrics.Increment("builder_decisions_resolved_total", r.ResolvedBy);
        metrics.Gauge("builder_connected_sockets", () => hub.Namespace.Sockets.Count);
        metrics.Gauge("builder_engine_sessions", () => io.Engine.SessionCount);
        metrics.Gauge("builder_running_builds", () => runner.RunningCount);
        var interval = TimeSpan.FromSeconds(options.Heartbeat.IntervalSeconds);
        _heartbeat = time.CreateTimer(_ => hub.Beat(), null, interval, interval);
        logger.LogInformation("Builder gateway ready: namespace {Namespace}, heartbeat every {Interval}", BuilderHub.NamespaceName, interval);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _heartbeat?.Dispose();
        await runner.DisposeAsync();
    }

    public void Dispose() => _heartbeat?.Dispose();
}
