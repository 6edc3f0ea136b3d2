using Builder;
using Builder.Auth;
using Builder.Decisions;
using Builder.Events;
using Builder.Hub;
using Builder.Rooms;
using Builder.Runner;
using Builder.Runner.Simulation;
using EngineIO;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using SocketIO;
using SocketIO.Redis;
using IConnectionMultiplexer = StackExchange.Redis.IConnectionMultiplexer;

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

        if (options.Metrics.Port is { } metricsPort)
        {
            // the metrics port is listened on besides the main URLs, on the same hosts
            var urls = builder.WebHost.GetSetting(WebHostDefaults.ServerUrlsKey) is { Length: > 0 } configured ? configured : "http://localhost:5000";
            builder.WebHost.UseUrls(urls + ";" + GatewayGuards.MetricsUrls(urls, metricsPort));
        }

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(options.Jwt);
        services.TryAddTimeProvider();
        services.AddSingleton(sp => new GatewayMetrics(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>(), sp.GetRequiredService<TimeProvider>()));
        GatewayTelemetry.Add(builder, options.Telemetry);
        GatewayOpenApi.Add(services);
        // WebSocket handshakes answered at the connection level (no HTTP connection per socket)
        services.AddEngineIOWebSocketFastPath();
        builder.WebHost.ConfigureKestrel((context, k) =>
        {
            // Kestrel's limits (request-head timeout, connection counts, body size) from the
            // standard section, e.g. Kestrel:Limits:RequestHeadersTimeout=00:00:10
            context.Configuration.GetSection("Kestrel:Limits").Bind(k.Limits);
            k.ConfigureEndpointDefaults(l => l.UseEngineIOWebSocketFastPath());
        });
        var devSecret = GatewayGuards.UsesDevelopmentSecret(options);
        var socketIO = services.AddSocketIO(o =>
        {
            o.Engine.Cors = new EngineCorsOptions { Origins = options.Cors.Origins, Credentials = !options.Cors.Origins.Contains("*") };
            o.Engine.MaxPayload = Math.Max(1_000_000, options.Limits.MaxEventBytes * 2);
            o.Engine.WebSocketMode = builder.Configuration.GetValue("Builder:Engine:WebSocketMode", EngineWebSocketMode.ConnectionPipe); // Framed or Runtime turn the connection-level fast path off
            o.Engine.AllowRequest = context =>
            {
                // browsers do not apply CORS to WebSocket: check the origin here
                if (devSecret && !GatewayGuards.IsLoopback(context))
                {
                    return ValueTask.FromResult<string?>(GatewayGuards.DevelopmentSecretRefusal);
                }

                if (options.Metrics.Port is { } port && context.Connection.LocalPort == port)
                {
                    return ValueTask.FromResult<string?>($"Port {port} serves /metrics only.");
                }

                var origin = context.Request.Headers.Origin.ToString();
                var allowed = origin.Length == 0 || o.Engine.Cors.IsAllowed(origin);
                return ValueTask.FromResult(allowed ? null : $"Origin {origin} is not allowed");
            };
            if (options.Engine.Cookie is { } cookie)
            {
                // sticky sessions behind a load balancer (long-polling of a cluster)
                o.Engine.Cookie = new EngineCookieOptions { Name = cookie, SameSite = Enum.Parse<Microsoft.Net.Http.Headers.SameSiteMode>(options.Engine.CookieSameSite) };
            }

            o.ConnectionStateRecovery = new ConnectionStateRecoveryOptions();
            // only /builder is served; a session that joins it neither soon nor at all is closed
            o.ServeMainNamespace = false;
            o.ConnectTimeout = TimeSpan.FromSeconds(options.Limits.ConnectTimeoutSeconds);
            o.Engine.MaxConnectionsPerAddress = options.Limits.MaxConnectionsPerAddress;
            o.Engine.MaxHandshakesPerAddress = options.Limits.MaxHandshakesPerAddress;
            o.Engine.MaxBufferedBytes = options.Limits.MaxBufferedBytes;
            o.Engine.WriteTimeout = TimeSpan.FromSeconds(options.Limits.WriteTimeoutSeconds);
        });
        if (options.Memory.IdleTrim)
        {
            socketIO.AddIdleMemoryTrimmer();
        }

        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            // one connection for the whole node (adapter, log, ingest, part B's stores): it does not
            // fail start-up while Redis is down and fails commands fast instead of queueing them
            services.AddSingleton<IConnectionMultiplexer>(_ => RedisAdapterExtensions.Connect(options.Redis.Configuration));
        }

        if (options.IsClusterNode)
        {
            // rooms span the nodes through the Redis adapter (Node's @socket.io/redis-adapter protocol)
            services.AddRedisAdapter(o => o.Key = options.Redis.AdapterKey);
        }

        switch (options.StoreProvider)
        {
            case "memory":
                services.AddSingleton<IEventLog>(_ => new InMemoryEventLog());
                services.AddSingleton<IDecisionStore, InMemoryDecisionStore>();
                services.AddSingleton<IBuildLeases>(_ => new LocalBuildLeases(new InMemoryBuildStore()));
                services.AddSingleton<IAgentLeases, LocalAgentLeases>();
                break;
            case "redis":
                // the log, the decisions, the build and the agent leases are shared by every node
                services.AddSingleton<IEventLog>(sp => new RedisEventLog(sp.GetRequiredService<IConnectionMultiplexer>(), options.Store.MaxEventsPerProject));
                services.AddSingleton<IDecisionStore>(sp => new RedisDecisionStore(sp.GetRequiredService<IConnectionMultiplexer>()));
                services.AddSingleton<IBuildLeases>(sp => new RedisBuildLeases(sp.GetRequiredService<IConnectionMultiplexer>()));
                services.AddSingleton<IAgentLeases>(sp => new RedisAgentLeases(sp.GetRequiredService<IConnectionMultiplexer>()));
                break;
            default:
                var path = Path.IsPathRooted(options.Store.Path) ? options.Store.Path : Path.Combine(builder.Environment.ContentRootPath, options.Store.Path);
                services.AddSingleton(_ => new SqliteStore(path, options.Store.Durability == "full" ? SqliteDurability.Full : SqliteDurability.Normal));
                services.AddSingleton<IEventLog>(sp => sp.GetRequiredService<SqliteStore>());
                services.AddSingleton<IDecisionStore>(sp => sp.GetRequiredService<SqliteStore>());
                services.AddSingleton<IBuildLeases>(sp => new LocalBuildLeases(sp.GetRequiredService<SqliteStore>()));
                services.AddSingleton<IAgentLeases, LocalAgentLeases>();
                break;
        }

        services.AddSingleton(sp => new TokenValidator(options.Jwt, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton(sp => new PreviewLinks(options.Jwt, options.Preview, sp.GetRequiredService<TimeProvider>()));
        services.AddHttpClient(nameof(ProjectAccess), c => c.Timeout = TimeSpan.FromSeconds(5));
        services.AddSingleton(sp => new ProjectAccess(options.Access, sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(ProjectAccess)), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ProjectAccess>>()));
        services.AddSingleton(sp => sp.GetRequiredService<SocketIOServer>().Of(BuilderHub.NamespaceName));
        services.AddSingleton<ProjectGates>();
        if (options.IsClusterNode)
        {
            services.AddSingleton(sp => new ClusterProjectRooms(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<IEventLog>(), sp.GetRequiredService<SocketIONamespace>(), sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<ClusterProjectRooms>>(), sp.GetRequiredService<GatewayMetrics>()));
            services.AddSingleton<IProjectRooms>(sp => sp.GetRequiredService<ClusterProjectRooms>());
            services.AddHostedService(sp => sp.GetRequiredService<ClusterProjectRooms>());
        }
        else
        {
            services.AddSingleton<IProjectRooms>(sp => new LocalProjectRooms(sp.GetRequiredService<SocketIONamespace>(), sp.GetRequiredService<IEventLog>(), sp.GetRequiredService<ProjectGates>(), sp.GetRequiredService<GatewayMetrics>()));
        }

        services.AddSingleton(sp => new EventPublisher(sp.GetRequiredService<IEventLog>(), sp.GetRequiredService<IProjectRooms>(), sp.GetRequiredService<ProjectGates>(), sp.GetRequiredService<TimeProvider>(), options.Limits.MaxEventBytes, sp.GetRequiredService<ILogger<EventPublisher>>()));
        services.AddSingleton<DecisionService>();
        services.AddSingleton<SnapshotBuilder>();
        services.AddSingleton<BuilderHub>();
        services.AddSingleton<ProducerAuth>();
        services.AddSingleton(sp =>
        {
            // build:completed carries a signed preview link, so that whoever watched the build can open it
            var links = sp.GetRequiredService<PreviewLinks>();
            options.Runner.PreviewUrlFor = links.Sign;
            return options.Runner;
        });
        services.AddSingleton(sp => new BuildRunner(
            SimulatedTeam.For,
            SimulatedTeam.DeployerFor,
            sp.GetRequiredService<EventPublisher>(),
            sp.GetRequiredService<DecisionService>(),
            sp.GetRequiredService<IBuildLeases>(),
            sp.GetRequiredService<RunnerOptions>(),
            sp.GetRequiredService<TimeProvider>(),
            // the simulated agents work by the system clock (their speed is the request's), unless a
            // clock is registered for them (the runner's tests put the gateway's fake clock there)
            sp.GetKeyedService<TimeProvider>(BuildRunner.PacingClockKey) ?? TimeProvider.System,
            sp.GetRequiredService<ILogger<BuildRunner>>()));
        services.AddSingleton<AgentLeaseMonitor>();
        services.AddHostedService<GatewayLifetime>();
        if (!string.IsNullOrWhiteSpace(options.Redis.Configuration))
        {
            // on a cluster one node at a time consumes builder:events (by lease), so each message is published once
            var lease = options.IsClusterNode ? TimeSpan.FromSeconds(options.Cluster.IngestLeaseSeconds) : (TimeSpan?)null;
            services.AddHostedService(sp => new RedisBridge(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<EventPublisher>(), sp.GetRequiredService<DecisionService>(), sp.GetRequiredService<GatewayMetrics>(), sp.GetRequiredService<ILogger<RedisBridge>>(), lease, TimeProvider.System));
        }

        var app = builder.Build();
        LogSecurity(app, options);
        if (devSecret)
        {
            app.Use(GatewayGuards.DevelopmentSecretMiddleware);
        }

        if (options.Metrics.Port is { } onlyMetrics)
        {
            app.Use(GatewayGuards.MetricsPortMiddleware(onlyMetrics));
        }

        // /metrics: the OpenTelemetry Prometheus exporter behind Builder:Metrics:Port/Token
        app.Use(GatewayGuards.MetricsGuardMiddleware(options.Metrics));
        app.MapPrometheusScrapingEndpoint("/metrics");

        // the store (Redis) away: 503 with Retry-After and a body naming the problem, never a lost event
        app.Use(StoreUnavailableMiddleware);
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");
        GatewayEndpoints.Map(app, options);
        GatewayOpenApi.Map(app);
        return app;
    }

    private static async Task StoreUnavailableMiddleware(HttpContext context, RequestDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (StoreUnavailableException ex) when (!context.Response.HasStarted)
        {
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = StoreUnavailableException.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await context.Response.WriteAsJsonAsync(new { error = new { code = "STORE_UNAVAILABLE", message = ex.Message + " Nothing was recorded: retry after the Retry-After delay.", fields = (object?)null } });
        }
    }

    /// <summary>The start-up log of what protects the gateway: accepted algorithms, missing issuer/audience, development helpers, metrics.</summary>
    private static void LogSecurity(WebApplication app, BuilderOptions options)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Builder.Gateway.Security");
        logger.LogInformation("JWT algorithms accepted: {Algorithms}", string.Join(", ", app.Services.GetRequiredService<TokenValidator>().Algorithms));
        if (!app.Environment.IsDevelopment())
        {
            if (string.IsNullOrEmpty(options.Jwt.Issuer))
            {
                logger.LogWarning("Builder:Jwt:Issuer is not set: tokens from any issuer signed with the configured key(s) are accepted");
            }

            if (string.IsNullOrEmpty(options.Jwt.Audience))
            {
                logger.LogWarning("Builder:Jwt:Audience is not set: tokens for any audience signed with the configured key(s) are accepted");
            }
        }

        if (app.Environment.IsDevelopment() && options.Dev.Enabled)
        {
            logger.LogInformation("Development endpoints enabled (GET /dev/token, POST /dev/projects/{{projectId}}/builds, the dashboard): they answer only on loopback");
        }

        if (GatewayGuards.UsesDevelopmentSecret(options))
        {
            logger.LogWarning("Builder:Jwt:Secret is the known development secret: the gateway answers only on loopback");
        }

        var links = app.Services.GetRequiredService<PreviewLinks>();
        logger.LogInformation("Preview links last {Seconds} s, signed with a key {Source}", options.Preview.LinkSeconds, links.KeyFromSecret ? "derived from Builder:Jwt:Secret" : "random to this process (no Builder:Jwt:Secret: links die with the process)");
        if (options.Metrics.Port is { } port)
        {
            logger.LogInformation("/metrics answers only on port {Port}{Token}", port, string.IsNullOrEmpty(options.Metrics.Token) ? string.Empty : ", with Authorization: Bearer <Builder:Metrics:Token>");
        }
        else if (!string.IsNullOrEmpty(options.Metrics.Token))
        {
            logger.LogInformation("/metrics needs Authorization: Bearer <Builder:Metrics:Token>");
        }
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
        publisher.Published += metrics.Published;
        decisions.Resolved += (_, r) => metrics.DecisionResolved(r.ResolvedBy);
        metrics.Gauge("builder.connected_sockets", "{socket}", "Sockets connected to /builder on this node", () => hub.Namespace.Sockets.Count);
        metrics.Gauge("builder.engine_sessions", "{session}", "Engine.IO sessions open on this node", () => io.Engine.SessionCount);
        metrics.Gauge("builder.running_builds", "{build}", "Builds this node runs", () => runner.RunningCount);
        // the process as operators watch it (and the abuse tests read it): memory and GC heap
        metrics.Gauge("process.resident_memory", "By", "Resident memory (working set) of the process", () => Environment.WorkingSet);
        metrics.Gauge("dotnet.gc_heap", "By", "Bytes allocated on the managed heap", () => GC.GetTotalMemory(false));
        // each socket is pinged once per interval; the sockets are served in slices, one every BeatPeriod
        _heartbeat = time.CreateTimer(_ => hub.Beat(), null, hub.BeatPeriod, hub.BeatPeriod);
        logger.LogInformation("Builder gateway ready: namespace {Namespace}, heartbeat every {Interval}", BuilderHub.NamespaceName, TimeSpan.FromSeconds(options.Heartbeat.IntervalSeconds));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _heartbeat?.Dispose();
        await runner.DisposeAsync();
    }

    public void Dispose() => _heartbeat?.Dispose();
}
