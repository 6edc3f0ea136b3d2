using EngineIO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>
/// What <c>AddSocketIO</c> returns: the place to choose the parser, the adapter and the optional
/// services of the server, as <c>AddSignalR().AddMessagePackProtocol().AddStackExchangeRedis()</c>.
/// </summary>
public interface ISocketIOServerBuilder
{
    /// <summary>The application's services.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Set-up of the Socket.IO server in an ASP.NET Core application.</summary>
public static class SocketIOServiceExtensions
{
    /// <summary>
    /// Registers a <see cref="SocketIOServer"/> singleton whose options come from the options
    /// pattern (<see cref="IOptions{SocketIOOptions}"/>: <paramref name="configure"/>, then any
    /// <c>services.Configure&lt;SocketIOOptions&gt;</c> or <c>Configure&lt;EngineIOOptions&gt;</c>),
    /// validated when the host starts: a bad value stops start-up with a message naming it.
    /// </summary>
    public static ISocketIOServerBuilder AddSocketIO(this IServiceCollection services, Action<SocketIOOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = services.AddOptions<SocketIOOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.AddOptions<EngineIOOptions>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<SocketIOOptions>, EngineOptionsSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<SocketIOOptions>, SocketIOOptionsValidator>());
        services.TryAddSingleton(sp => new SocketIOServer(sp.GetRequiredService<IOptions<SocketIOOptions>>().Value, sp.GetService<ILoggerFactory>()));

        // the Engine.IO options are the server's own (its Engine), whichever way they are asked for
        services.Replace(ServiceDescriptor.Singleton<IOptions<EngineIOOptions>>(sp => Options.Create(sp.GetRequiredService<IOptions<SocketIOOptions>>().Value.Engine)));
        return new SocketIOServerBuilder(services);
    }

    /// <summary>
    /// Registers the server with options bound from <paramref name="configuration"/> (a section such
    /// as <c>SocketIO</c>: <c>ConnectTimeout</c>, <c>ServeMainNamespace</c>, <c>Engine:PingInterval</c>,
    /// <c>Engine:MaxPayload</c>, <c>Engine:Transports</c>, ...), then <paramref name="configure"/>.
    /// </summary>
    public static ISocketIOServerBuilder AddSocketIO(this IServiceCollection services, IConfiguration configuration, Action<SocketIOOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<SocketIOOptions>().Bind(configuration).Configure(o =>
        {
            // the binder appends a list to its default ("polling", "websocket"): a configured one replaces it
            if (configuration.GetSection("Engine:Transports").Get<string[]>() is { Length: > 0 } transports)
            {
                o.Engine.Transports = transports;
            }
        });
        return services.AddSocketIO(configure);
    }

    /// <summary>
    /// Uses the MessagePack format of npm's <c>socket.io-msgpack-parser</c> 3.x (clients pass
    /// that parser in their options) instead of the default JSON one.
    /// </summary>
    public static ISocketIOServerBuilder AddMessagePackParser(this ISocketIOServerBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure<SocketIOOptions>(o => o.Parser = new MessagePackPacketParser(o.JsonSerializerOptions));
        return builder;
    }

    /// <summary>
    /// Opt-in: runs the <see cref="IdleMemoryTrimmer"/>, which gives memory back to the system once
    /// the process has grown and gone quiet (a compacting full collection of the whole process, so
    /// it is the host's choice, not the library's).
    /// </summary>
    public static ISocketIOServerBuilder AddIdleMemoryTrimmer(this ISocketIOServerBuilder builder, Action<IdleMemoryTrimOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var trim = new IdleMemoryTrimOptions();
        configure?.Invoke(trim);
        builder.Services.AddSingleton<IHostedService>(sp => new IdleMemoryTrimmer(
            trim,
            sp.GetRequiredService<SocketIOServer>().Options.Engine.TimeProvider,
            logger: sp.GetService<ILoggerFactory>()?.CreateLogger<IdleMemoryTrimmer>()));
        return builder;
    }

    /// <summary>
    /// Serves the registered Socket.IO server at <paramref name="path"/> (clients use it as their
    /// <c>path</c> option; "/socket.io" by default). Needs <c>app.UseWebSockets()</c> for WebSocket.
    /// </summary>
    public static IEndpointConventionBuilder MapSocketIO(this IEndpointRouteBuilder endpoints, string path = "/socket.io")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var server = endpoints.ServiceProvider.GetRequiredService<SocketIOServer>();
        endpoints.ServiceProvider.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(server.Close);
        return endpoints.MapEngineIO(path, server.Engine);
    }

    private sealed class SocketIOServerBuilder(IServiceCollection services) : ISocketIOServerBuilder
    {
        public IServiceCollection Services { get; } = services;
    }

    /// <summary>Applies <c>Configure&lt;EngineIOOptions&gt;</c> set-ups to the server's <see cref="SocketIOOptions.Engine"/>.</summary>
    private sealed class EngineOptionsSetup(IEnumerable<IConfigureOptions<EngineIOOptions>> setups, IEnumerable<IPostConfigureOptions<EngineIOOptions>> postSetups) : IPostConfigureOptions<SocketIOOptions>
    {
        public void PostConfigure(string? name, SocketIOOptions options)
        {
            foreach (var setup in setups)
            {
                if (setup is IConfigureNamedOptions<EngineIOOptions> named)
                {
                    named.Configure(name, options.Engine);
                }
                else
                {
                    setup.Configure(options.Engine);
                }
            }

            foreach (var setup in postSetups)
            {
                setup.PostConfigure(name, options.Engine);
            }
        }
    }

    private sealed class SocketIOOptionsValidator : IValidateOptions<SocketIOOptions>
    {
        public ValidateOptionsResult Validate(string? name, SocketIOOptions options)
        {
            var failures = new List<string>();
            if (options.ConnectTimeout <= TimeSpan.Zero)
            {
                failures.Add($"SocketIO: ConnectTimeout must be positive (got {options.ConnectTimeout}).");
            }

            if (options.MaxQueuedEventsPerSocket < 1)
            {
                failures.Add($"SocketIO: MaxQueuedEventsPerSocket must be at least 1 (got {options.MaxQueuedEventsPerSocket}).");
            }

            if (!Enum.IsDefined(options.HandlerConcurrency))
            {
                failures.Add($"SocketIO: HandlerConcurrency must be Sequential or Concurrent (got {options.HandlerConcurrency}).");
            }

            if (options.ConnectionStateRecovery is { } recovery)
            {
                if (recovery.MaxDisconnectionDuration <= TimeSpan.Zero)
                {
                    failures.Add($"SocketIO: ConnectionStateRecovery:MaxDisconnectionDuration must be positive (got {recovery.MaxDisconnectionDuration}).");
                }

                if (recovery.MaxStoredPackets < 1)
                {
                    failures.Add($"SocketIO: ConnectionStateRecovery:MaxStoredPackets must be at least 1 (got {recovery.MaxStoredPackets}).");
                }
            }

            try
            {
                options.Engine.Validate();
            }
            catch (ArgumentException ex)
            {
                failures.Add($"SocketIO: Engine:{ex.ParamName}: {ex.Message}");
            }

            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }
}
