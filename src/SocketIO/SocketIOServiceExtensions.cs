using EngineIO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace SocketIO;

/// <summary>Set-up of the Socket.IO server in an ASP.NET Core application.</summary>
public static class SocketIOServiceExtensions
{
    /// <summary>Registers a <see cref="SocketIOServer"/> singleton configured by <paramref name="configure"/>.</summary>
    public static IServiceCollection AddSocketIO(this IServiceCollection services, Action<SocketIOOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddSingleton(sp =>
        {
            var options = new SocketIOOptions();
            configure?.Invoke(options);
            foreach (var setup in sp.GetServices<IConfigureOptions<SocketIOOptions>>())
            {
                setup.Configure(options); // extensions such as the Redis adapter's AddRedisAdapter
            }

            return new SocketIOServer(options, sp.GetService<ILoggerFactory>());
        });
        services.AddSingleton<IHostedService>(sp =>
        {
            var options = sp.GetRequiredService<SocketIOServer>().Options;
            return options.IdleMemoryTrim is { } trim
                ? new IdleMemoryTrimmer(trim, options.Engine.TimeProvider, logger: sp.GetService<ILoggerFactory>()?.CreateLogger<IdleMemoryTrimmer>())
                : new NoHostedWork();
        });
        return services;
    }

    private sealed class NoHostedWork : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
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
}
