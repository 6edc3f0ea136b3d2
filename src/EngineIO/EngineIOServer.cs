using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace EngineIO;

/// <summary>The Engine.IO errors, with the codes and messages of the reference server.</summary>
public sealed record EngineError(int Code, string Message, int Status)
{
    /// <summary>Code 0: the transport query parameter names no allowed transport.</summary>
    public static readonly EngineError UnknownTransport = new(0, "Transport unknown", 400);
    /// <summary>Code 1: no session has this id.</summary>
    public static readonly EngineError UnknownSid = new(1, "Session ID unknown", 400);
    /// <summary>Code 2: a handshake by a method other than GET.</summary>
    public static readonly EngineError BadHandshakeMethod = new(2, "Bad handshake method", 400);
    /// <summary>Code 3: a malformed request.</summary>
    public static readonly EngineError BadRequest = new(3, "Bad request", 400);
    /// <summary>Code 4: refused by <see cref="EngineIOOptions.AllowRequest"/> (403; 400 for a WebSocket request, as the reference server).</summary>
    public static readonly EngineError Forbidden = new(4, "Forbidden", 403);
    /// <summary>Code 5: an EIO version other than 4.</summary>
    public static readonly EngineError UnsupportedProtocolVersion = new(5, "Unsupported protocol version", 400);

    /// <summary>A polling body that is not UTF-8: a bad request (code 3) that says why.</summary>
    public static readonly EngineError PayloadNotUtf8 = new(3, "Bad request: the payload is not valid UTF-8", 400);

    /// <summary>A polling POST declaring <c>application/octet-stream</c>: binary bodies are Engine.IO v3's, refused and the session closed, as by the reference server.</summary>
    public static readonly EngineError BinaryContentType = new(3, "Bad request: binary polling payloads (application/octet-stream) are not part of Engine.IO v4", 400);

    /// <summary>A polling body over <see cref="EngineIOOptions.MaxPayload"/>: 413 (as the reference server), with a body that names the limit.</summary>
    public static EngineError PayloadTooLarge(int maxPayload) => new(3, $"Bad request: the payload is larger than maxPayload ({maxPayload} bytes)", 413);
}

/// <summary>
/// An Engine.IO v4 server: handshakes, routes polling and WebSocket requests to their session.
/// </summary>
public sealed class EngineIOServer
{
    private static long s_sentBytes;
    private readonly ConcurrentDictionary<string, EngineSession> _sessions = new(StringComparer.Ordinal);
    private readonly EngineIOOptions _options;
    private readonly AddressLimiter? _limiter;

    /// <summary>Bytes of packets every Engine.IO server of the process has handed to its transports.</summary>
    public static long TotalBytesSent => Volatile.Read(ref s_sentBytes);

    internal static void CountSent(int bytes) => Interlocked.Add(ref s_sentBytes, bytes);

    /// <summary>A server whose sessions report to <paramref name="handler"/>; validates <paramref name="options"/>.</summary>
    public EngineIOServer(EngineIOOptions options, IEngineHandler handler, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(handler);
        options.Validate();
        _options = options;
        Handler = handler;
        Log = logger ?? NullLogger.Instance;
        Flusher = new WebSocketFlusher(options, Log);
        _limiter = AddressLimiter.For(options);
    }

    /// <summary>The options this server runs with.</summary>
    public EngineIOOptions Options => _options;

    /// <summary>Sessions open now.</summary>
    public int SessionCount => _sessions.Count;

    internal IEngineHandler Handler { get; }

    internal WebSocketFlusher Flusher { get; }

    /// <summary>The path this server is mapped at ("/socket.io/"), once mapped.</summary>
    internal string? MountPath { get; set; }

    /// <summary>Sessions opened by the connection-level WebSocket path (<see cref="WebSocketFastPath"/>).</summary>
    internal int FastPathSessions;

    internal ILogger Log { get; }

    /// <summary>The per-address limits, when configured.</summary>
    internal AddressLimiter? Limiter => _limiter;

    /// <summary>
    /// The layer above accepted the session (Socket.IO: a namespace is joined): it no longer counts
    /// against <see cref="EngineIOOptions.MaxHandshakesPerAddress"/>.
    /// </summary>
    public void MarkEstablished(EngineSession session)
    {
        ArgumentNullException.ThrowIfNull(session);
        _limiter?.Established(session.Id, session.Request.RemoteAddress);
    }

    /// <summary>Closes every session (reason "server shutting down").</summary>
    public void CloseAll()
    {
        foreach (var session in _sessions.Values)
        {
            session.Abort(EngineCloseReasonKind.ServerShuttingDown);
        }
    }

    internal void Remove(EngineSession session)
    {
        if (_sessions.TryRemove(new KeyValuePair<string, EngineSession>(session.Id, session)))
        {
            _limiter?.Closed(session.Id, session.Request.RemoteAddress);
        }
    }

    /// <summary>Answers one Engine.IO request: handshake, poll, post, or WebSocket upgrade.</summary>
    public async Task HandleRequestAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var request = context.Request;
        if (!ApplyCors(context))
        {
            return;
        }

        var transport = request.Query["transport"].ToString();
        var isWebSocket = context.WebSockets.IsWebSocketRequest;
        var verdict = EngineRequestValidator.Check(this, request.Method, transport, request.Query["sid"].ToString(), isWebSocket);
        switch (verdict.Kind)
        {
            case EngineRequestKind.Error:
                await WriteErrorAsync(Log, context, verdict.Error!);
                return;
            case EngineRequestKind.Poll:
                await verdict.Session!.HandlePollAsync(context);
                return;
            case EngineRequestKind.Post:
                await verdict.Session!.HandlePostAsync(context);
                return;
            case EngineRequestKind.Upgrade:
                using (var upgraded = await WebSocketTransport.AcceptAsync(context, _options.WebSocketMode))
                {
                    await verdict.Session!.RunUpgradeAsync(upgraded);
                }

                return;
            case EngineRequestKind.AcceptAndClose:
                EngineLog.WebSocketAcceptedAndClosed(Log, request.Path.ToString(), request.QueryString.ToString());
                await AcceptAndCloseAsync(context);
                return;
        }

        var address = context.Connection.RemoteIpAddress;
        if (_limiter?.TryAdmit(address) is { } limited)
        {
            await WriteErrorAsync(Log, context, limited);
            return;
        }

        var opened = false;
        try
        {
            if (await EngineRequestValidator.CheckAllowRequestAsync(_options, context) is { } forbidden)
            {
                await WriteErrorAsync(Log, context, forbidden);
                return;
            }

            if (isWebSocket && transport != EngineIOOptions.WebSocket)
            {
                // the polling transport does not run over a WebSocket: accepted, then closed (as the reference)
                EngineLog.WebSocketAcceptedAndClosed(Log, request.Path.ToString(), request.QueryString.ToString());
                await AcceptAndCloseAsync(context);
                return;
            }

            // the reference server checks the version last, in its handshake
            if (EngineRequestValidator.CheckVersion(request.Query["EIO"]) is { } unsupported)
            {
                await WriteErrorAsync(Log, context, unsupported);
                return;
            }

            if (isWebSocket)
            {
                using var socket = await WebSocketTransport.AcceptAsync(context, _options.WebSocketMode);
                var session = Open(context, EngineIOOptions.WebSocket);
                opened = true;
                await session.RunWebSocketAsync(socket);
            }
            else
            {
                var session = Open(context, EngineIOOptions.Polling);
                opened = true;
                await session.HandlePollAsync(context);
            }
        }
        finally
        {
            if (!opened)
            {
                _limiter?.Abandon(address);
            }
        }
    }

    /// <summary>
    /// Completes a WebSocket handshake and closes the socket at once, as the reference server's
    /// <c>websocket.close()</c>: a close frame without a status code, then a moment for the client's
    /// close frame. No WebSocket object is made for it (the runtime's cannot send a close frame
    /// without a status), except over HTTP/2, which has no raw upgrade.
    /// </summary>
    private async Task AcceptAndCloseAsync(HttpContext context)
    {
        using var timeout = new CancellationTokenSource(_options.UpgradeTimeout, _options.TimeProvider);
        var upgrade = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>();
        var key = context.Request.Headers.SecWebSocketKey.ToString();
        try
        {
            if (upgrade is null || !upgrade.IsUpgradableRequest || key.Length == 0)
            {
                using var socket = await context.WebSockets.AcceptWebSocketAsync();
                await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, timeout.Token);
                return;
            }

            context.Response.Headers.Connection = "Upgrade";
            context.Response.Headers.Upgrade = "websocket";
            context.Response.Headers.SecWebSocketAccept = WebSocketTransport.AcceptKey(key);
            await using var stream = await upgrade.UpgradeAsync();
            await stream.WriteAsync(new byte[] { 0x88, 0x00 }, timeout.Token);
            await stream.FlushAsync(timeout.Token);
            // the client answers with its close frame and ends the connection; what it sends is not read further
            var buffer = new byte[256];
            while (await stream.ReadAsync(buffer, timeout.Token) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or System.Net.WebSockets.WebSocketException or IOException)
        {
            context.Abort();
        }
    }

    internal bool TryGetSession(string sid, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out EngineSession? session) =>
        _sessions.TryGetValue(sid, out session);

    private EngineSession Open(HttpContext context, string transport)
    {
        var session = Open(EngineRequestInfo.From(context), transport);
        if (_options.Cookie is { } cookie && !context.Response.HasStarted)
        {
            // sticky sessions: the polling handshake's answer carries the session id (a WebSocket session needs none)
            context.Response.Headers.Append(HeaderNames.SetCookie, cookie.Format(session.Id));
        }

        return session;
    }

    internal EngineSession Open(EngineRequestInfo request, string transport)
    {
        var session = new EngineSession(this, _options, request, transport);
        _sessions[session.Id] = session;
        _limiter?.Opened(session.Id);
        var upgrades = transport == EngineIOOptions.Polling && _options.AllowUpgrades && _options.Transports.Contains(EngineIOOptions.WebSocket)
            ? "[\"websocket\"]"
            : "[]";
        var sidJson = JsonSerializer.Serialize(session.Id, EngineJsonContext.Default.String);
        var open = EngineMessage.Control(
            $"0{{\"sid\":{sidJson},\"upgrades\":{upgrades},\"pingInterval\":{(long)_options.PingInterval.TotalMilliseconds},\"pingTimeout\":{(long)_options.PingTimeout.TotalMilliseconds},\"maxPayload\":{_options.MaxPayload}}}");
        EngineLog.SessionOpened(Log, session.Id, transport);
        session.Start(open);
        Handler.OnOpen(session);
        return session;
    }

    /// <summary>Adds CORS headers; answers preflight requests. False when the request is answered.</summary>
    private bool ApplyCors(HttpContext context)
    {
        var cors = _options.Cors;
        var origin = context.Request.Headers.Origin.ToString();
        var preflight = HttpMethods.IsOptions(context.Request.Method);
        if (cors is not null && origin.Length > 0 && cors.IsAllowed(origin))
        {
            var headers = context.Response.Headers;
            var wildcard = cors.Origins.Contains("*") && !cors.Credentials;
            headers.AccessControlAllowOrigin = wildcard ? "*" : origin;
            if (!wildcard)
            {
                headers.Vary = "Origin";
            }

            if (cors.Credentials)
            {
                headers.AccessControlAllowCredentials = "true";
            }

            if (preflight)
            {
                headers.AccessControlAllowMethods = "GET,POST";
                var requested = context.Request.Headers.AccessControlRequestHeaders;
                if (!StringValues.IsNullOrEmpty(requested))
                {
                    headers.AccessControlAllowHeaders = requested;
                }
            }
        }

        // without CORS, as the reference server without its cors middleware, an OPTIONS request is
        // checked as any other (a handshake by OPTIONS: code 2)
        if (preflight && cors is not null)
        {
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            context.Response.ContentLength = 0;
            return false;
        }

        return true;
    }

    internal static async Task WriteErrorAsync(ILogger log, HttpContext context, EngineError error)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        if (log.IsEnabled(LogLevel.Debug))
        {
            EngineLog.RequestRefused(log, context.Request.Method, context.Request.Path.ToString(), context.Request.QueryString.ToString(), error.Status, error.Code, error.Message);
        }

        // a refused WebSocket request gets 400 whatever the reason, as from the reference server
        // (its abortUpgrade); only our own per-address limit keeps its 429
        context.Response.StatusCode = context.WebSockets.IsWebSocketRequest && error.Status != StatusCodes.Status429TooManyRequests
            ? StatusCodes.Status400BadRequest
            : error.Status;
        context.Response.ContentType = "application/json";
        var body = JsonSerializer.SerializeToUtf8Bytes(new EngineErrorBody(error.Code, error.Message), EngineJsonContext.Default.EngineErrorBody);
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body);
    }
}

internal sealed record EngineErrorBody(int code, string message);
