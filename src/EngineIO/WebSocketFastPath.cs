using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

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
            || !IsNewWebSocketSession(head, server.Options))
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
        if (server.Options.AllowRequest is { } allow)
        {
            string? refusal;
            try
            {
                refusal = await allow(head.ToHttpContext(connection));
            }
#pragma warning disable CA1031 // the application's callback failed: 500, as on the HTTP path
            catch (Exception ex)
#pragma warning restore CA1031
            {
                server.Log.LogError(ex, "AllowRequest failed for a WebSocket handshake");
                await output.WriteAsync("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
                return null;
            }

            if (refusal is not null)
            {
                var body = JsonSerializer.SerializeToUtf8Bytes(new EngineErrorBody(EngineError.Forbidden.Code, refusal), EngineJsonContext.Default.EngineErrorBody);
                await output.WriteAsync(Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"));
                await output.WriteAsync(body);
                return null;
            }
        }

        await output.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {WebSocketTransport.AcceptKey(head.Headers["Sec-WebSocket-Key"])}\r\n\r\n"));
        var transport = WebSocketTransport.Create(connection);
        Interlocked.Increment(ref server.FastPathSessions);
        return (server.Open(request, EngineIOOptions.WebSocket), transport);
    }

    /// <summary>The handshake of a WebSocket-only session, exactly as Kestrel + the WebSocket middleware would accept it.</summary>
    private static bool IsNewWebSocketSession(RequestHead head, EngineIOOptions options)
    {
        if (head.Method != "GET" || head.Version != "HTTP/1.1" || !options.Transports.Contains(EngineIOOptions.WebSocket))
        {
            return false;
        }

        if (!head.Query.TryGetValue("EIO", out var eio) || eio != "4"
            || !head.Query.TryGetValue("transport", out var transport) || transport != EngineIOOptions.WebSocket
            || head.Query.ContainsKey("sid"))
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
        return Convert.TryFromBase64String(key, decoded, out var length) && length == 16;
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

/// <summary>An HTTP/1.1 request head, parsed strictly; anything unusual is left to Kestrel.</summary>
internal sealed class RequestHead
{
    private readonly List<KeyValuePair<string, string>> _fields;

    private RequestHead(string method, string target, string path, string queryString, string version, Dictionary<string, string> headers, Dictionary<string, string> query, List<KeyValuePair<string, string>> fields)
    {
        _fields = fields;
        Method = method;
        Target = target;
        Path = path;
        QueryString = queryString;
        Version = version;
        Headers = headers;
        Query = query;
    }

    public string Method { get; }

    public string Target { get; }

    public string Path { get; }

    public string QueryString { get; }

    public string Version { get; }

    public Dictionary<string, string> Headers { get; }

    public Dictionary<string, string> Query { get; }

    public static bool TryParse(ReadOnlySequence<byte> buffer, KestrelServerLimits limits, out RequestHead head, out SequencePosition end)
    {
        head = null!;
        end = buffer.Start;
        var max = Math.Min(MaxBytes, limits.MaxRequestLineSize + limits.MaxRequestHeadersTotalSize);
        var reader = new SequenceReader<byte>(buffer.Length > max ? buffer.Slice(0, max) : buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> bytes, "\r\n\r\n"u8, advancePastDelimiter: true))
        {
            return false;
        }

        end = reader.Position;
        var span = bytes.IsSingleSegment ? bytes.FirstSpan : bytes.ToArray();
        foreach (var b in span)
        {
            // visible ASCII, space, tab and CRLF only
            if (b >= 0x7F || (b < 0x20 && b is not ((byte)'\r' or (byte)'\n' or (byte)'\t')))
            {
                return false;
            }
        }

        var lines = Encoding.ASCII.GetString(span).Split("\r\n");
        if (lines.Length - 1 > limits.MaxRequestHeaderCount || lines[0].Length + 2 > limits.MaxRequestLineSize)
        {
            return false;
        }

        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[1].Length == 0 || requestLine[1][0] != '/')
        {
            return false;
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var fields = new List<KeyValuePair<string, string>>(lines.Length - 1);
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i];
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            // a bare CR or LF, no name, whitespace in or before the name (folding included): Kestrel's
            if (line.AsSpan().IndexOfAny('\r', '\n') >= 0 || colon <= 0 || line.AsSpan(0, colon).IndexOfAny(' ', '\t') >= 0)
            {
                return false;
            }

            var name = Shared(line.AsSpan(0, colon));
            var valueText = line.AsSpan(colon + 1).Trim(" \t");
            var value = name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase) ? valueText.ToString() : Shared(valueText);
            fields.Add(new(name, value));
            // repeated fields read as Kestrel gives them (StringValues joined with ",")
            headers[name] = headers.TryGetValue(name, out var earlier) ? earlier + "," + value : value;
        }

        if (fields.Count(f => f.Key.Equals("Host", StringComparison.OrdinalIgnoreCase)) != 1
            || !IsValidHost(headers["Host"])
            || headers.ContainsKey("Content-Length") || headers.ContainsKey("Transfer-Encoding"))
        {
            return false;
        }

        var target = Shared(requestLine[1]);
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? target : target[..q];
        var queryString = q < 0 ? "" : target[q..];
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in QueryHelpers.ParseQuery(queryString))
        {
            query[Shared(pair.Key)] = Shared(pair.Value.ToString());
        }

        head = new RequestHead(Shared(requestLine[0]), target, path, queryString, Shared(requestLine[2]), headers, query, fields);
        return true;
    }

    // The strings many connections send alike (method, version, header names, the Host, the URL,
    // Upgrade, a browser's User-Agent or Origin, EIO=4), stored once instead of copied per
    // connection, since a session keeps its request's headers and query for its whole life: a small
    // lossy table of recent strings; text equal to the one in its slot is that string (a race or a
    // collision only costs a copy). Unique values (the WebSocket key) are not put in it.
    private static readonly string?[] s_shared = new string?[512];

    private static string Shared(ReadOnlySpan<char> text)
    {
        var slot = (int)((uint)string.GetHashCode(text, StringComparison.Ordinal) % (uint)s_shared.Length);
        var seen = Volatile.Read(ref s_shared[slot]);
        if (seen is not null && text.SequenceEqual(seen))
        {
            return seen;
        }

        var copy = text.ToString();
        Volatile.Write(ref s_shared[slot], copy);
        return copy;
    }

    /// <summary>
    /// A registered name or IPv4 address (letters, digits, <c>-._~</c>) or a bracketed IPv6 literal
    /// (hex digits, <c>:</c> and <c>.</c>), then at most one <c>:port</c> of one or more digits: a
    /// subset of what Kestrel accepts (found by the differential test: <c>a:b</c>, <c>h:</c>,
    /// <c>[::1</c> were taken here and refused by Kestrel). Anything else is Kestrel's to judge.
    /// </summary>
    internal static bool IsValidHost(ReadOnlySpan<char> host)
    {
        int end;
        if (host.Length > 0 && host[0] == '[')
        {
            end = host.IndexOf(']');
            if (end < 2)
            {
                return false;
            }

            foreach (var c in host[1..end])
            {
                if (!(char.IsAsciiHexDigit(c) || c is ':' or '.'))
                {
                    return false;
                }
            }

            end++;
        }
        else
        {
            end = 0;
            while (end < host.Length && (char.IsAsciiLetterOrDigit(host[end]) || host[end] is '-' or '.' or '_' or '~'))
            {
                end++;
            }

            if (end == 0)
            {
                return false;
            }
        }

        if (end == host.Length)
        {
            return true;
        }

        var port = host[(end + 1)..];
        return host[end] == ':' && port.Length > 0 && !port.ContainsAnyExceptInRange('0', '9');
    }

    private const int MaxBytes = 16 * 1024;

    /// <summary>A request-only context for <see cref="EngineIOOptions.AllowRequest"/>.</summary>
    public HttpContext ToHttpContext(ConnectionContext connection)
    {
        var headers = new HeaderDictionary();
        foreach (var (name, value) in _fields)
        {
            // repeated fields keep their separate values, as Kestrel gives them
            headers[name] = StringValues.Concat(headers[name], value);
        }

        var features = new FeatureCollection();
        features.Set<IHttpRequestFeature>(new HttpRequestFeature
        {
            Protocol = Version,
            Method = Method,
            Scheme = "http",
            Path = Path,
            QueryString = QueryString,
            RawTarget = Target,
            Headers = headers,
        });
        features.Set<IHttpResponseFeature>(new HttpResponseFeature());
        features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
        {
            ConnectionId = connection.ConnectionId,
            RemoteIpAddress = (connection.RemoteEndPoint as IPEndPoint)?.Address,
            RemotePort = (connection.RemoteEndPoint as IPEndPoint)?.Port ?? 0,
            LocalIpAddress = (connection.LocalEndPoint as IPEndPoint)?.Address,
            LocalPort = (connection.LocalEndPoint as IPEndPoint)?.Port ?? 0,
        });
        return new DefaultHttpContext(features);
    }
}
