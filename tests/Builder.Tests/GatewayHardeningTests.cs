using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Builder.Gateway;
using Builder.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Builder.Tests;

/// <summary>
/// Issue 16, defect 10b-d: start-up warnings for a missing issuer/audience, the development helpers
/// and the known development secret on loopback only, /metrics on its own port or behind a token.
/// </summary>
public sealed class GatewayHardeningTests
{
    private static readonly IPAddress Outsider = IPAddress.Parse("203.0.113.7");

    /// <summary>Builds (and, when asked, starts) the real gateway in an environment, its log captured.</summary>
    private static WebApplication Build(string environment, Dictionary<string, string?> settings, CapturedLog? log = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = TestGateway.Secret,
            ["Builder:Store:Provider"] = "memory",
        };
        foreach (var (key, value) in settings)
        {
            all[key] = value;
        }

        return GatewayApp.Build(["--environment", environment], b =>
        {
            b.Configuration.AddInMemoryCollection(all);
            b.Logging.ClearProviders();
            if (log is not null)
            {
                b.Logging.AddProvider(log);
            }
        });
    }

    private static Uri Address(WebApplication app) =>
        new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/') + "/");

    [Theory]
    [InlineData("Production", null, null, 2)]
    [InlineData("Production", TestGateway.Issuer, null, 1)]
    [InlineData("Production", TestGateway.Issuer, TestGateway.Audience, 0)]
    [InlineData("Development", null, null, 0)]
    public async Task Unset_issuer_or_audience_is_warned_about_outside_Development(string environment, string? issuer, string? audience, int warnings)
    {
        var log = new CapturedLog();
        await using var app = Build(environment, new() { ["Builder:Jwt:Issuer"] = issuer, ["Builder:Jwt:Audience"] = audience }, log);
        var found = log.Entries.Where(e => e.Level == LogLevel.Warning && (e.Message.Contains("Builder:Jwt:Issuer", StringComparison.Ordinal) || e.Message.Contains("Builder:Jwt:Audience", StringComparison.Ordinal))).ToList();
        Assert.True(found.Count == warnings, string.Join("\n", log.Entries));
        Assert.Contains(log.Entries, e => e.Message.Contains("JWT algorithms accepted: HS256", StringComparison.Ordinal));
    }

    [Fact]
    public void Loopback_predicate_accepts_only_loopback_addresses()
    {
        static HttpContext From(IPAddress? address) => new DefaultHttpContext { Connection = { RemoteIpAddress = address } };
        Assert.True(GatewayGuards.IsLoopback(From(IPAddress.Loopback)));
        Assert.True(GatewayGuards.IsLoopback(From(IPAddress.Parse("127.0.0.2"))));
        Assert.True(GatewayGuards.IsLoopback(From(IPAddress.IPv6Loopback)));
        Assert.True(GatewayGuards.IsLoopback(From(IPAddress.Parse("::ffff:127.0.0.1"))));
        Assert.False(GatewayGuards.IsLoopback(From(Outsider)));
        Assert.False(GatewayGuards.IsLoopback(From(IPAddress.Parse("::ffff:203.0.113.7"))));
        Assert.False(GatewayGuards.IsLoopback(From(IPAddress.Parse("10.0.0.1"))));
        Assert.False(GatewayGuards.IsLoopback(From(null)));
    }

    /// <summary>Runs the real endpoint's request delegate (filters included) on a request from <paramref name="remote"/>.</summary>
    private static async Task<(int Status, string Body)> InvokeAsync(WebApplication app, string method, string pattern, string path, IPAddress remote)
    {
        var endpoint = ((IEndpointRouteBuilder)app).DataSources.SelectMany(d => d.Endpoints).OfType<RouteEndpoint>()
            .Single(e => e.RoutePattern.RawText == pattern && (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods.Contains(method) ?? false));
        await using var scope = app.Services.CreateAsyncScope();
        var context = new DefaultHttpContext { RequestServices = scope.ServiceProvider };
        context.Connection.RemoteIpAddress = remote;
        context.Request.Method = method;
        context.Request.Path = path;
        context.Request.Query = new QueryCollection(new Dictionary<string, Microsoft.Extensions.Primitives.StringValues> { ["user"] = "mallory" });
        context.Request.RouteValues["projectId"] = "shop";
        context.Request.ContentType = "application/json";
        context.Request.Body = new MemoryStream("""{"requirements":"x","speed":1000}"""u8.ToArray());
        var body = new MemoryStream();
        context.Response.Body = body;
        await endpoint.RequestDelegate!(context);
        return (context.Response.StatusCode, Encoding.UTF8.GetString(body.ToArray()));
    }

    [Fact]
    public async Task Development_endpoints_refuse_a_request_that_is_not_from_loopback()
    {
        await using var app = Build("Development", new() { ["Builder:Dev:Enabled"] = "true" });

        var token = await InvokeAsync(app, "GET", "/dev/token", "/dev/token", Outsider);
        Assert.True(token.Status == 403, $"{token.Status} {token.Body}");
        Assert.Contains(GatewayGuards.LoopbackOnlyCode, token.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("\"token\"", token.Body, StringComparison.Ordinal);
        var build = await InvokeAsync(app, "POST", "/dev/projects/{projectId}/builds", "/dev/projects/shop/builds", Outsider);
        Assert.True(build.Status == 403, $"{build.Status} {build.Body}");

        // the same delegate answers a loopback caller
        var local = await InvokeAsync(app, "GET", "/dev/token", "/dev/token", IPAddress.Loopback);
        Assert.True(local.Status == 200, $"{local.Status} {local.Body}");
        Assert.Contains("\"token\"", local.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Development_endpoints_answer_on_loopback_end_to_end_and_the_log_says_loopback_only()
    {
        var log = new CapturedLog();
        await using var app = Build("Development", new() { ["Builder:Dev:Enabled"] = "true" }, log);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = Address(app), Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.GetAsync(new Uri("dev/token?user=alice&projects=shop", UriKind.Relative));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains(log.Entries, e => e.Message.Contains("Development endpoints enabled", StringComparison.Ordinal) && e.Message.Contains("only on loopback", StringComparison.Ordinal));
        await app.StopAsync();
    }

    [Fact]
    public async Task Known_development_secret_refuses_requests_from_elsewhere_and_serves_loopback()
    {
        var reached = false;
        var outsider = new DefaultHttpContext { Connection = { RemoteIpAddress = Outsider } };
        var body = new MemoryStream();
        outsider.Response.Body = body;
        await GatewayGuards.DevelopmentSecretMiddleware(outsider, _ => { reached = true; return Task.CompletedTask; });
        Assert.False(reached);
        Assert.Equal(403, outsider.Response.StatusCode);
        Assert.Contains("development JWT secret", Encoding.UTF8.GetString(body.ToArray()), StringComparison.Ordinal);

        // end to end from loopback: the gateway with the development secret works, and says it is loopback-only
        var log = new CapturedLog();
        await using var app = Build("Development", new() { ["Builder:Jwt:Secret"] = GatewayGuards.DevelopmentSecret }, log);
        var allow = app.Services.GetRequiredService<SocketIO.SocketIOServer>().Engine.Options.AllowRequest!;
        Assert.Equal(GatewayGuards.DevelopmentSecretRefusal, await allow(new DefaultHttpContext { Connection = { RemoteIpAddress = Outsider } }));
        Assert.Null(await allow(new DefaultHttpContext { Connection = { RemoteIpAddress = IPAddress.Loopback } }));
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = Address(app), Timeout = TimeSpan.FromSeconds(30) };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode);
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("known development secret", StringComparison.Ordinal));
        await app.StopAsync();
    }

    [Fact]
    public void Development_secret_constant_is_the_one_of_the_Development_profile()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "src", "Builder.Gateway", "appsettings.Development.json")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.FullName, "src", "Builder.Gateway", "appsettings.Development.json")));
        Assert.Equal(GatewayGuards.DevelopmentSecret, json.RootElement.GetProperty("Builder").GetProperty("Jwt").GetProperty("Secret").GetString());
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Metrics_port_serves_metrics_only_there_and_404_on_the_main_port()
    {
        var port = FreePort();
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Metrics:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.NotEqual(port, gateway.Url.Port);

        using var main = await gateway.Http.GetAsync(new Uri("metrics", UriKind.Relative));
        Assert.Equal(HttpStatusCode.NotFound, main.StatusCode);
        Assert.DoesNotContain("builder_", await main.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        using var metrics = await http.GetAsync(new Uri("metrics", UriKind.Relative));
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.True(metrics.StatusCode == HttpStatusCode.OK, $"{(int)metrics.StatusCode} {text}");
        Assert.Contains("builder_connected_sockets", text, StringComparison.Ordinal);

        // the metrics port serves nothing else, the main port everything else
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync(new Uri("socket.io/?EIO=4&transport=polling", UriKind.Relative))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gateway.Http.GetAsync(new Uri("healthz", UriKind.Relative))).StatusCode);
    }

    [Fact]
    public async Task Metrics_token_is_required_when_configured()
    {
        const string token = "metrics-token-0123456789";
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Metrics:Token"] = token);

        async Task<(HttpStatusCode Status, string Body)> GetAsync(string? bearer)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "metrics");
            if (bearer is not null)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            using var response = await gateway.Http.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var none = await GetAsync(null);
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Contains("Builder:Metrics:Token", none.Body, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync("wrong-token-0123456789")).Status);
        var ok = await GetAsync(token);
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        Assert.Contains("builder_connected_sockets", ok.Body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Builder:Metrics:Port", "0")]
    [InlineData("Builder:Metrics:Port", "70000")]
    [InlineData("Builder:Metrics:Token", "short")]
    [InlineData("Builder:Preview:LinkSeconds", "0")]
    [InlineData("Builder:Preview:MaxEvents", "0")]
    [InlineData("Builder:Telemetry:OtlpEndpoint", "collector:4317")]
    [InlineData("Builder:Telemetry:OtlpEndpoint", "ftp://collector")]
    [InlineData("Builder:Telemetry:OtlpProtocol", "udp")]
    public void A_bad_new_value_is_refused_naming_its_key(string key, string value)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Build("Production", new() { [key] = value }));
        Assert.Contains(ex.Failures, f => f.Contains(key, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://localhost:3001", 9100, "http://localhost:9100")]
    [InlineData("http://127.0.0.1:0;http://[::1]:0", 9100, "http://127.0.0.1:9100;http://[::1]:9100")]
    [InlineData("https://*:443/base", 9100, "http://*:9100")]
    public void Metrics_urls_keep_the_hosts_of_the_main_urls(string urls, int port, string expected) =>
        Assert.Equal(expected, GatewayGuards.MetricsUrls(urls, port));

    /// <summary>Log entries kept in memory.</summary>
    private sealed class CapturedLog : ILoggerProvider
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLog owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue((logLevel, formatter(state, exception)));
        }
    }
}
