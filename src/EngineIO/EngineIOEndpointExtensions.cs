using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace EngineIO;

/// <summary>Maps an Engine.IO server onto an ASP.NET Core route.</summary>
public static class EngineIOEndpointExtensions
{
    /// <summary>Maps a raw Engine.IO server (no Socket.IO) at <paramref name="path"/>.</summary>
    public static IEndpointConventionBuilder MapEngineIO(this IEndpointRouteBuilder endpoints, string path, IEngineHandler handler, Action<EngineIOOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = new EngineIOOptions();
        configure?.Invoke(options);
        var logger = endpoints.ServiceProvider.GetService<ILoggerFactory>()?.CreateLogger<EngineIOServer>();
        var server = new EngineIOServer(options, handler, logger);
        endpoints.ServiceProvider.GetService<IHostApplicationLifetime>()?.ApplicationStopping.Register(server.CloseAll);
        return endpoints.MapEngineIO(path, server);
    }

    /// <summary>Maps an existing Engine.IO server at <paramref name="path"/> (e.g. "/socket.io").</summary>
    public static IEndpointConventionBuilder MapEngineIO(this IEndpointRouteBuilder endpoints, string path, EngineIOServer server)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(server);
        var trimmed = path.TrimEnd('/');
        server.MountPath = trimmed + "/";
        endpoints.ServiceProvider.GetService<WebSocketFastPathMounts>()?.Add(server);
        return endpoints.Map(trimmed + "/{**rest}", server.HandleRequestAsync);
    }
}
