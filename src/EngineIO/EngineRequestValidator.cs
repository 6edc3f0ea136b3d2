using Microsoft.AspNetCore.Http;

namespace EngineIO;

/// <summary>What an Engine.IO request asks for, once checked.</summary>
internal enum EngineRequestKind
{
    /// <summary>Refused: answer with the error.</summary>
    Error,
    /// <summary>A new session (polling, or a WebSocket whose transport is "websocket").</summary>
    Handshake,
    /// <summary>A polling GET of an open session.</summary>
    Poll,
    /// <summary>A polling POST of an open session.</summary>
    Post,
    /// <summary>A WebSocket that probes the upgrade of a polling session.</summary>
    Upgrade,
    /// <summary>
    /// A WebSocket request the reference server accepts (101) and then closes at once: the
    /// session has upgraded already or is upgrading, or the request names the polling transport.
    /// </summary>
    AcceptAndClose,
}

/// <summary>The verdict on one request; <see cref="Session"/> is set for the kinds of an open session.</summary>
internal readonly record struct EngineRequestVerdict(EngineRequestKind Kind, EngineError? Error = null, EngineSession? Session = null)
{
    public static EngineRequestVerdict Refuse(EngineError error) => new(EngineRequestKind.Error, error);
}

/// <summary>
/// The one check of an Engine.IO request, shared by the HTTP path and the connection-level
/// WebSocket fast path, in the reference server's order (engine.io <c>Server.verify</c>, then
/// the transport's request handler): transport (code 0), session id (code 1), transport
/// mismatch (code 3), handshake method (code 2), a WebSocket transport named on a plain request
/// (code 3). The handshake's admission (per-address limits, <see cref="EngineIOOptions.AllowRequest"/>,
/// then the protocol version, code 5) follows in <see cref="EngineIOServer"/>.
/// </summary>
internal static class EngineRequestValidator
{
    /// <param name="server">The server whose sessions and options apply.</param>
    /// <param name="method">The HTTP method.</param>
    /// <param name="transport">The <c>transport</c> query parameter ("" when absent).</param>
    /// <param name="sid">The <c>sid</c> query parameter ("" when absent).</param>
    /// <param name="isWebSocket">Whether the request is a WebSocket handshake.</param>
    public static EngineRequestVerdict Check(EngineIOServer server, string method, string transport, string sid, bool isWebSocket)
    {
        var options = server.Options;
        if (!options.Transports.Contains(transport))
        {
            return EngineRequestVerdict.Refuse(EngineError.UnknownTransport);
        }

        if (sid.Length > 0)
        {
            // a GET is the client waiting for data: if the ping timeout has passed (its timer may run
            // late on a loaded machine) the session is over; a POST may carry the late pong itself
            if (!server.TryGetSession(sid, out var session) || (HttpMethods.IsGet(method) && session.HeartbeatExpired()))
            {
                return EngineRequestVerdict.Refuse(EngineError.UnknownSid);
            }

            if (isWebSocket)
            {
                // the reference server completes the WebSocket handshake, then closes the socket
                // when the transport does not upgrade or the session cannot (any more)
                return transport == EngineIOOptions.WebSocket && options.AllowUpgrades && session.CanUpgrade
                    ? new(EngineRequestKind.Upgrade, Session: session)
                    : new(EngineRequestKind.AcceptAndClose, Session: session);
            }

            if (transport != session.Transport || transport != EngineIOOptions.Polling)
            {
                return EngineRequestVerdict.Refuse(EngineError.BadRequest);
            }

            // the reference server answers other methods with a bare 500; a 400 that says why is clearer
            return HttpMethods.IsGet(method) ? new(EngineRequestKind.Poll, Session: session)
                : HttpMethods.IsPost(method) ? new(EngineRequestKind.Post, Session: session)
                : EngineRequestVerdict.Refuse(EngineError.BadRequest);
        }

        // a WebSocket handshake is a GET, or a CONNECT over HTTP/2 (RFC 8441)
        if (!HttpMethods.IsGet(method) && !(isWebSocket && HttpMethods.IsConnect(method)))
        {
            return EngineRequestVerdict.Refuse(EngineError.BadHandshakeMethod);
        }

        if (transport == EngineIOOptions.WebSocket && !isWebSocket)
        {
            return EngineRequestVerdict.Refuse(EngineError.BadRequest);
        }

        return new(EngineRequestKind.Handshake);
    }

    /// <summary>
    /// The application's check of a handshake (<see cref="EngineIOOptions.AllowRequest"/>), for both
    /// paths: null to go on, else the Forbidden error (code 4) with the application's message. An
    /// exception of the callback is the caller's (500 on either path).
    /// </summary>
    public static async ValueTask<EngineError?> CheckAllowRequestAsync(EngineIOOptions options, HttpContext context)
    {
        if (options.AllowRequest is not { } allow)
        {
            return null;
        }

        var refusal = await allow(context);
        return refusal is null ? null : EngineError.Forbidden with { Message = refusal };
    }

    /// <summary>The protocol version check of a handshake (after its admission, as the reference server orders them).</summary>
    public static EngineError? CheckVersion(string? eio) => eio == "4" ? null : EngineError.UnsupportedProtocolVersion;
}
