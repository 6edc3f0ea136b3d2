using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace EngineIO;

/// <summary>The connection middleware behind <see cref="WebSocketFastPathExtensions.UseEngineIOWebSocketFastPath"/>.</summary>
internal static class WebSocketFastPath
{
    /// <summary>How long a new connection may take to send its first bytes before Kestrel takes over.</summary>
    private static readonly TimeSpan s_firstReadTimeout = TimeSpan.FromSeconds(10);

    public static Task HandleAsync(ConnectionContext connection, ConnectionDelegate next, WebSocketFastPathMounts mounts, KestrelServerLimits limits) =>
        limits.MaxConcurrentUpgradedConnections is not null
            ? next(connection) // Kestrel counts upgraded connections: leave them all to it
            : RunAsync(AcceptAsync(connection, next, mounts, limits));

    /// <summary>
    /// The part that lasts as long as the connection, kept apart from the handshake so that its
    /// state machine holds one field rather than every local of the handshake (about 200 B).
    /// </summary>
    private static async Task RunAsync(Task<(EngineSession Session, WebSocketTransport Transport)?> accept)
    {
        if (await accept is var (session, transport))
        {
            using (transport)
            {
                await session.RunWebSocketAsync(transport);
            }
        }
    }

    /// <summary>
    /// Answers the handshake, or hands the connection to Kestrel (then completes when Kestrel is
    /// done with it); the transport of the new session when there is one.
    /// </summary>
    private static async Task<(EngineSession Session, WebSocketTransport Transport)?> AcceptAsync(ConnectionContext connection, ConnectionDelegate next, WebSocketFastPathMounts mounts, KestrelServerLimits limits)
    {
        var input = connection.Transport.Input;
        ReadResult read;
        var closing = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closing))
        {
            timeout.CancelAfter(s_firstReadTimeout);
            try
            {
                read = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                // silent client, or the server is stopping: Kestrel's own handling takes over
                await next(connection);
                return null;
            }
        }

        var buffer = read.Buffer;
        if (!RequestHead.TryParse(buffer, limits, out var head, out var end)
            || mounts.Find(head.Path) is not { } server
            || !IsNewWebSocketSession(head, server))
        {
            // everything else is Kestrel's, from the same bytes: nothing is consumed or examined
            input.AdvanceTo(buffer.Start, buffer.Start);
            await next(connection);
            return null;
        }

        input.AdvanceTo(end);
        var output = connection.Transport.Output;
        var request = new EngineRequestInfo(head.Headers, head.Query, (connection.RemoteEndPoint as IPEndPoint)?.Address, head.Target, secure: false);
        if (server.Limiter?.TryAdmit(request.RemoteAddress) is { } limited)
        {
            await output.WriteAsync(AddressLimiter.RawResponse(limited));
            return null;
        }

        (EngineSession Session, WebSocketTransport Transport)? accepted = null;
        try
        {
            accepted = await AdmittedAsync(connection, server, head, request);
            return accepted;
        }
        finally
        {
            if (accepted is null)
            {
                server.Limiter?.Abandon(request.RemoteAddress);
            }
        }
    }

    /// <summary>The rest of the handshake, once admitted by the per-address limits: null when refused.</summary>
    private static async Task<(EngineSession Session, WebSocketTransport Transport)?> AdmittedAsync(ConnectionContext connection, EngineIOServer server, RequestHead head, EngineRequestInfo request)
    {
        var output = connection.Transport.Output;
        if (server.Options.AllowRequest is not null)
        {
            EngineError? forbidden;
            try
            {
                forbidden = await EngineRequestValidator.CheckAllowRequestAsync(server.Options, head.ToHttpContext(connection));
            }
#pragma warning disable CA1031 // the application's callback failed: 500, as on the HTTP path
            catch (Exception ex)
#pragma warning restore CA1031
            {
                EngineLog.AllowRequestFailed(server.Log, ex);
                await output.WriteAsync("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                return null;
            }

            if (forbidden is not null)
            {
                // 400 whatever the reason for a WebSocket request, as the reference server's abortUpgrade
                var body = JsonSerializer.SerializeToUtf8Bytes(new EngineErrorBody(forbidden.Code, forbidden.Message), EngineJsonContext.Default.EngineErrorBody);
                await output.WriteAsync(Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
                await output.WriteAsync(body);
                return null;
            }
        }

        await output.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {WebSocketTransport.AcceptKey(head.Headers["Sec-WebSocket-Key"])}\r\n\r\n"));
        var transport = new PipeWebSocketTransport(connection);
        Interlocked.Increment(ref server.FastPathSessions);
        return (server.Open(request, EngineIOOptions.WebSocket), transport);
    }

    /// <summary>
    /// The handshake of a WebSocket-only session, exactly as Kestrel + the WebSocket middleware
    /// would accept it, that the HTTP path's own check (<see cref="EngineRequestValidator"/>) takes
    /// as a new WebSocket session of protocol version 4; anything else, errors included, is
    /// answered by the HTTP path. Only in <see cref="EngineWebSocketMode.ConnectionPipe"/>.
    /// </summary>
    private static bool IsNewWebSocketSession(RequestHead head, EngineIOServer server)
    {
        if (server.Options.WebSocketMode != EngineWebSocketMode.ConnectionPipe || head.Method != "GET" || head.Version != "HTTP/1.1")
        {
            return false;
        }

        if (!head.Headers.TryGetValue("Upgrade", out var upgrade) || !upgrade.Equals("websocket", StringComparison.OrdinalIgnoreCase)
            || !head.Headers.TryGetValue("Connection", out var connection) || !HasToken(connection, "upgrade")
            || !head.Headers.TryGetValue("Sec-WebSocket-Version", out var version) || version != "13"
            || !head.Headers.TryGetValue("Sec-WebSocket-Key", out var key))
        {
            return false;
        }

        Span<byte> decoded = stackalloc byte[18];
        if (!Convert.TryFromBase64String(key, decoded, out var length) || length != 16)
        {
            return false;
        }

        var transport = head.Query.GetValueOrDefault("transport", "");
        var verdict = EngineRequestValidator.Check(server, head.Method, transport, head.Query.GetValueOrDefault("sid", ""), isWebSocket: true);
        return verdict.Kind == EngineRequestKind.Handshake
            && transport == EngineIOOptions.WebSocket
            && !head.Query.ContainsKey("sid")
            && EngineRequestValidator.CheckVersion(head.Query.GetValueOrDefault("EIO")) is null;
    }

    private static bool HasToken(string list, string token)
    {
        foreach (var part in list.Split(','))
        {
            if (part.Trim().Equals(token, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
