using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace EngineIO;

/// <summary>Set-up of the WebSocket fast path (Engine.IO upgrades served below ASP.NET Core's routing).</summary>
public static class WebSocketFastPathExtensions
{
    /// <summary>
    /// Makes the Engine.IO servers mapped by <c>MapEngineIO</c>/<c>MapSocketIO</c> reachable from
    /// <see cref="UseEngineIOWebSocketFastPath"/>.
    /// </summary>
    public static IServiceCollection AddEngineIOWebSocketFastPath(this IServiceCollection services)
    {
        services.TryAddSingleton<WebSocketFastPathMounts>();
        return services;
    }

    /// <summary>
    /// Answers Engine.IO WebSocket handshakes on this endpoint at the connection level, before
    /// Kestrel's HTTP/1.1 layer: a new connection whose first request is a plain WebSocket
    /// handshake for a mapped Engine.IO path (GET, HTTP/1.1, <c>EIO=4</c>,
    /// <c>transport=websocket</c>, no <c>sid</c>, within Kestrel's request limits) is upgraded
    /// without an HTTP connection object, <see cref="HttpContext"/> or middleware pipeline, which
    /// saves about 5 KB per connection and a quarter of the handshake's cost. Every other request
    /// (polling, upgrades of a polling session, other routes, anything unusual) goes to Kestrel
    /// from the same bytes, unchanged; so does every handshake when
    /// <c>Limits.MaxConcurrentUpgradedConnections</c> is set. Like the Node.js reference server,
    /// whose WebSocket upgrades bypass the HTTP request handlers, application middleware does not
    /// run for these handshakes: <see cref="EngineIOOptions.AllowRequest"/> does, on a
    /// request-only <see cref="HttpContext"/>. Needs
    /// <see cref="AddEngineIOWebSocketFastPath"/>. For endpoints from URLs:
    /// <c>ConfigureKestrel(k =&gt; k.ConfigureEndpointDefaults(l =&gt; l.UseEngineIOWebSocketFastPath()))</c>.
    /// </summary>
    public static ListenOptions UseEngineIOWebSocketFastPath(this ListenOptions listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        var mounts = listen.ApplicationServices.GetService<WebSocketFastPathMounts>()
            ?? throw new InvalidOperationException("UseEngineIOWebSocketFastPath needs services.AddEngineIOWebSocketFastPath().");
        var limits = listen.KestrelServerOptions.Limits;
        listen.Use(next => connection => WebSocketFastPath.HandleAsync(connection, next, mounts, limits));
        return listen;
    }
}

/// <summary>The Engine.IO servers mapped in this application, by path.</summary>
internal sealed class WebSocketFastPathMounts
{
    private readonly Lock _gate = new();
    private volatile EngineIOServer[] _servers = [];

    public void Add(EngineIOServer server)
    {
        lock (_gate)
        {
            _servers = [.. _servers, server];
        }
    }

    public EngineIOServer? Find(ReadOnlySpan<char> path)
    {
        foreach (var server in _servers)
        {
            if (path.SequenceEqual(server.MountPath))
            {
                return server;
            }
        }

        return null;
    }
}
