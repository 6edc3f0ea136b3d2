using Microsoft.AspNetCore.Http;

namespace EngineIO;

/// <summary>Options of an Engine.IO v4 server. Defaults are the reference server's.</summary>
public sealed class EngineIOOptions
{
    /// <summary>The HTTP long-polling transport's name.</summary>
    public const string Polling = "polling";
    /// <summary>The WebSocket transport's name.</summary>
    public const string WebSocket = "websocket";

    /// <summary>How often the server sends a ping.</summary>
    public TimeSpan PingInterval { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>How long the server waits for the pong before closing the session.</summary>
    public TimeSpan PingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Largest polling body or WebSocket message accepted, in bytes.</summary>
    public int MaxPayload { get; set; } = 1_000_000;

    /// <summary>How long a probed WebSocket may take to send the upgrade packet.</summary>
    public TimeSpan UpgradeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Allowed transports, among "polling" and "websocket".</summary>
    public IReadOnlyList<string> Transports { get; set; } = [Polling, WebSocket];

    /// <summary>Whether a polling session may upgrade to WebSocket.</summary>
    public bool AllowUpgrades { get; set; } = true;

    /// <summary>
    /// Packets a session may hold while its transport cannot keep up. When the queue is full the
    /// slow-consumer policy applies: volatile packets are dropped, any other packet closes the
    /// session with reason "transport error" (the client reconnects and can recover its state).
    /// </summary>
    public int MaxBufferedPackets { get; set; } = 8192;

    /// <summary>
    /// Bytes of packets a session may hold while its transport cannot keep up (4 MiB): the
    /// slow-consumer policy of <see cref="MaxBufferedPackets"/> applied in bytes, so that a client
    /// that stops reading holds a bounded amount of memory whatever the size of its packets. A
    /// packet is counted by its encoded length; one packet larger than the budget is still queued
    /// when nothing else waits (it could never be sent otherwise).
    /// </summary>
    public long MaxBufferedBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// How long one write to a WebSocket may take (30 s). A write still pending after this (the
    /// client stopped reading) closes the session with "transport error" and aborts the
    /// connection; a session closed for another reason while a write is stuck has its connection
    /// aborted at the same deadline. Checked at the heartbeat's ticks, so it acts up to a ping
    /// interval late.
    /// </summary>
    public TimeSpan WriteTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// WebSocket write coalescing: how many times a round of writes may let other waiting work
    /// (typically more broadcasts) run first, so that a connection gets several frames in one
    /// write. 0 writes as soon as the thread pool runs the round.
    /// </summary>
    public int MaxFlushDeferrals { get; set; } = 16;

    /// <summary>WebSocket write coalescing: the longest a round of writes is put back for.</summary>
    public TimeSpan MaxFlushDelay { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>CORS for the polling transport; null disables CORS headers.</summary>
    public EngineCorsOptions? Cors { get; set; }

    /// <summary>
    /// Called for every handshake and upgrade request (browsers do not apply CORS to WebSocket,
    /// so an origin check belongs here). Return null to accept, or a message to refuse with 403.
    /// </summary>
    public Func<HttpContext, ValueTask<string?>>? AllowRequest { get; set; }

    /// <summary>
    /// Sessions one client address (IPv6: one /64) may have open at once; a handshake over the
    /// limit is refused with 429 and <c>{"code":6,"message":"Too many connections from this address"}</c>.
    /// 0 (the default, as the reference server) sets no limit.
    /// </summary>
    public int MaxConnectionsPerAddress { get; set; }

    /// <summary>
    /// Sessions one client address may have still handshaking: from the handshake request until the
    /// layer above calls <see cref="EngineIOServer.MarkEstablished"/> (Socket.IO: when a namespace
    /// is joined) or the session closes; over the limit, 429 as for
    /// <see cref="MaxConnectionsPerAddress"/>. 0 (the default) sets no limit.
    /// </summary>
    public int MaxHandshakesPerAddress { get; set; }

    /// <summary>
    /// A cookie holding the session id, set on the handshake (Node's <c>cookie</c> option), so that a
    /// load balancer can route a long-polling session's requests to the same server; null (the
    /// default): no cookie.
    /// </summary>
    public EngineCookieOptions? Cookie { get; set; }

    /// <summary>
    /// How WebSockets are run (<see cref="EngineWebSocketMode.ConnectionPipe"/>, the fastest the
    /// listener allows). All modes speak the same protocol; the choice only trades speed and memory
    /// against staying on the runtime's own WebSocket.
    /// </summary>
    public EngineWebSocketMode WebSocketMode { get; set; } = EngineWebSocketMode.ConnectionPipe;

    /// <summary>The clock behind heartbeats and timeouts; tests substitute a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first value out of range.</summary>
    public void Validate()
    {
        if (PingInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PingInterval), "PingInterval must be positive.");
        }

        if (PingTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(PingTimeout), "PingTimeout must be positive.");
        }

        if (MaxPayload < 16)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPayload), "MaxPayload must be at least 16 bytes.");
        }

        if (MaxBufferedPackets < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedPackets), "MaxBufferedPackets must be at least 1.");
        }

        if (MaxBufferedBytes < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxBufferedBytes), "MaxBufferedBytes must be at least 1.");
        }

        if (WriteTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(WriteTimeout), "WriteTimeout must be positive.");
        }

        if (MaxFlushDeferrals < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFlushDeferrals), "MaxFlushDeferrals must be 0 or more.");
        }

        if (MaxFlushDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxFlushDelay), "MaxFlushDelay must be 0 or more.");
        }

        if (MaxConnectionsPerAddress < 0 || MaxHandshakesPerAddress < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConnectionsPerAddress), "MaxConnectionsPerAddress and MaxHandshakesPerAddress must be 0 (no limit) or more.");
        }

        if (Cookie is { } cookie && (string.IsNullOrWhiteSpace(cookie.Name) || cookie.Name.Any(c => c <= ' ' || c >= 127 || "()<>@,;:\\\"/[]?={}".Contains(c, StringComparison.Ordinal))))
        {
            throw new ArgumentException("Cookie.Name must be a cookie name (a token, e.g. \"io\").", nameof(Cookie));
        }

        if (!Enum.IsDefined(WebSocketMode))
        {
            throw new ArgumentOutOfRangeException(nameof(WebSocketMode), "WebSocketMode must be ConnectionPipe, Framed or Runtime.");
        }

        if (Transports.Count == 0 || Transports.Any(t => t is not (Polling or WebSocket)))
        {
            throw new ArgumentException("Transports must be a non-empty subset of \"polling\" and \"websocket\".", nameof(Transports));
        }
    }
}

/// <summary>How an Engine.IO server runs its WebSockets (<see cref="EngineIOOptions.WebSocketMode"/>).</summary>
public enum EngineWebSocketMode
{
    /// <summary>
    /// New WebSocket sessions on a listener set up with <c>UseEngineIOWebSocketFastPath</c> are
    /// upgraded at the connection level and run on a WebSocket directly over the connection's
    /// pipes; every other WebSocket (upgrades of polling sessions, other listeners) as
    /// <see cref="Framed"/>. The default.
    /// </summary>
    ConnectionPipe,

    /// <summary>
    /// Every WebSocket goes through ASP.NET Core's HTTP pipeline; the runtime's WebSocket receives,
    /// and the session's queued packets go out as frames we lay out, one write per batch. The
    /// connection-level fast path passes every request on.
    /// </summary>
    Framed,

    /// <summary>
    /// Every WebSocket is the runtime's as ASP.NET Core accepts it (<c>AcceptWebSocketAsync</c>),
    /// one <c>SendAsync</c> per packet; the connection-level fast path passes every request on.
    /// </summary>
    Runtime,
}

/// <summary>The session cookie (Node's <c>cookie: {name, path, httpOnly, sameSite}</c>; its defaults are Node's).</summary>
public sealed class EngineCookieOptions
{
    /// <summary>The cookie's name (<c>io</c>).</summary>
    public string Name { get; set; } = "io";

    /// <summary>The cookie's Path; null: no Path attribute.</summary>
    public string? Path { get; set; } = "/";

    /// <summary>Whether the cookie is hidden from scripts (true).</summary>
    public bool HttpOnly { get; set; } = true;

    /// <summary>The cookie's SameSite attribute (Lax).</summary>
    public Microsoft.Net.Http.Headers.SameSiteMode SameSite { get; set; } = Microsoft.Net.Http.Headers.SameSiteMode.Lax;

    /// <summary>The Set-Cookie value for a session.</summary>
    public string Format(string sessionId) =>
        new Microsoft.Net.Http.Headers.SetCookieHeaderValue(Name, sessionId) { Path = Path, HttpOnly = HttpOnly, SameSite = SameSite }.ToString();
}

/// <summary>CORS settings for HTTP long-polling requests.</summary>
public sealed class EngineCorsOptions
{
    /// <summary>Allowed origins; "*" allows any.</summary>
    public IReadOnlyList<string> Origins { get; set; } = [];

    /// <summary>Sends Access-Control-Allow-Credentials and echoes the origin instead of "*".</summary>
    public bool Credentials { get; set; }

    /// <summary>Whether <paramref name="origin"/> is one of <see cref="Origins"/> (or they contain "*").</summary>
    public bool IsAllowed(string origin)
    {
        foreach (var allowed in Origins)
        {
            if (allowed == "*" || string.Equals(allowed, origin, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
