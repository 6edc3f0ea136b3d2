using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Builder.Gateway;

/// <summary>
/// Who may reach what: the development helpers (<c>/dev/*</c>, the dashboard) and a gateway that
/// runs with the known development JWT secret answer only on loopback; <c>/metrics</c> answers on
/// its own port (<c>Builder:Metrics:Port</c>) and/or with a bearer token (<c>Builder:Metrics:Token</c>).
/// </summary>
public static class GatewayGuards
{
    /// <summary>The JWT secret of <c>appsettings.Development.json</c>: public, so only loopback may use it.</summary>
    public const string DevelopmentSecret = "development-only-secret-change-me-0123456789";

    /// <summary>The code of a refusal for a request that did not come from loopback.</summary>
    public const string LoopbackOnlyCode = "LOOPBACK_ONLY";

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    /// <summary>Whether the request came from this machine (127.0.0.0/8, ::1, or IPv4 loopback mapped to IPv6); no address: no.</summary>
    public static bool IsLoopback(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return IsLoopback(context.Connection.RemoteIpAddress);
    }

    /// <inheritdoc cref="IsLoopback(HttpContext)"/>
    public static bool IsLoopback(IPAddress? address) =>
        address is not null && IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);

    /// <summary>Whether the configured secret is the known development one.</summary>
    public static bool UsesDevelopmentSecret(BuilderOptions options) =>
        string.Equals(options?.Jwt.Secret, DevelopmentSecret, StringComparison.Ordinal);

    /// <summary>Endpoint filter of the development endpoints: 403 LOOPBACK_ONLY with a body unless the request came from loopback.</summary>
    public static async ValueTask<object?> LoopbackOnlyFilter(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        return IsLoopback(context.HttpContext)
            ? await next(context)
            : Results.Json(new { error = new { code = LoopbackOnlyCode, message = "The development endpoints answer only on loopback." } }, s_json, statusCode: 403);
    }

    /// <summary>
    /// Middleware of a gateway running with <see cref="DevelopmentSecret"/>: anyone can mint tokens
    /// with it, so a request from elsewhere than loopback gets 403 LOOPBACK_ONLY with a body.
    /// </summary>
    public static Task DevelopmentSecretMiddleware(HttpContext context, RequestDelegate next)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(next);
        return IsLoopback(context) ? next(context) : WriteAsync(context, 403, LoopbackOnlyCode, DevelopmentSecretRefusal);
    }

    /// <summary>Why a request from elsewhere is refused when the development secret is configured.</summary>
    public const string DevelopmentSecretRefusal = "This gateway runs with the known development JWT secret and answers only on loopback; set Builder:Jwt:Secret (or a key file) to serve other hosts.";

    /// <summary>
    /// Where /metrics answers: with <c>Builder:Metrics:Port</c> only on that local port (404
    /// elsewhere); with <c>Builder:Metrics:Token</c> only to <c>Authorization: Bearer &lt;token&gt;</c> (401 otherwise).
    /// Null: allowed; else the refusal.
    /// </summary>
    public static IResult? CheckMetrics(HttpContext context, MetricsOptions options)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        if (options.Port is { } port && context.Connection.LocalPort != port)
        {
            return Results.Json(new { error = new { code = "NOT_FOUND", message = "Not found." } }, s_json, statusCode: 404);
        }

        if (!string.IsNullOrEmpty(options.Token))
        {
            var authorization = context.Request.Headers.Authorization.ToString();
            var given = authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? authorization["Bearer ".Length..].Trim() : string.Empty;
            if (!CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(options.Token))))
            {
                context.Response.Headers.WWWAuthenticate = "Bearer";
                return Results.Json(new { error = new { code = given.Length == 0 ? "TOKEN_MISSING" : "TOKEN_INVALID", message = "/metrics needs Authorization: Bearer <Builder:Metrics:Token>." } }, s_json, statusCode: 401);
            }
        }

        return null;
    }

    /// <summary>Middleware in front of the Prometheus scraping endpoint: /metrics answers only as <see cref="CheckMetrics"/> allows.</summary>
    public static Func<HttpContext, RequestDelegate, Task> MetricsGuardMiddleware(MetricsOptions options) => (context, next) =>
        context.Request.Path.Equals("/metrics", StringComparison.Ordinal) && CheckMetrics(context, options) is { } refusal
            ? refusal.ExecuteAsync(context)
            : next(context);

    /// <summary>Middleware of the metrics port: only /metrics is served there (404 with a body for the rest).</summary>
    public static Func<HttpContext, RequestDelegate, Task> MetricsPortMiddleware(int port) => (context, next) =>
        context.Connection.LocalPort == port && !context.Request.Path.Equals("/metrics", StringComparison.Ordinal)
            ? WriteAsync(context, 404, "NOT_FOUND", $"Port {port} serves /metrics only.")
            : next(context);

    /// <summary>The URLs to listen on for the metrics port: the hosts of <paramref name="urls"/> on <paramref name="port"/>, over http.</summary>
    public static string MetricsUrls(string urls, int port)
    {
        ArgumentNullException.ThrowIfNull(urls);
        return string.Join(';', urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(url =>
        {
            var scheme = url.IndexOf("://", StringComparison.Ordinal);
            var rest = scheme < 0 ? url : url[(scheme + 3)..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            rest = slash < 0 ? rest : rest[..slash];
            var colon = rest.LastIndexOf(':');
            var host = colon > rest.LastIndexOf(']') ? rest[..colon] : rest;
            return $"http://{host}:{port}";
        }).Distinct(StringComparer.OrdinalIgnoreCase));
    }

    private static async Task WriteAsync(HttpContext context, int status, string code, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await context.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(new { error = new { code, message } }, s_json), context.RequestAborted);
    }
}
