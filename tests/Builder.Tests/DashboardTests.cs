using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Builder.Contracts;
using Builder.Events;
using Builder.Gateway;
using Builder.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Builder.Tests;

/// <summary>
/// The development dashboard (web/) and its credential-free build endpoint: served in Development
/// with Dev:Enabled only, and driven end to end in Debian's headless Chromium (node/dashboard_e2e.mjs).
/// These run on the real clock: the page mints its token through /dev/token and answers the heartbeat itself.
/// </summary>
public sealed class DashboardTests
{
    private static readonly TimeSpan ScenarioWait = TimeSpan.FromSeconds(150);
    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    private static string E2EDir => Path.Combine(NodeScript.RepoRoot, "tests", "E2E");

    [Fact]
    public async Task A_person_watches_a_whole_build_in_the_dashboard_answers_the_decision_and_sees_the_deployment()
    {
        Assert.True(File.Exists(Path.Combine(E2EDir, "node_modules", "playwright-core", "package.json")), $"playwright-core is not installed: run `npm ci` in {E2EDir}");
        Assert.True(File.Exists("/usr/bin/chromium"), "Chromium is not installed: apt-get install chromium");
        await using var gateway = await DevGateway.StartAsync("Development", devEnabled: true);
        const string project = "dashboard-e2e";

        await using var node = NodeScript.Start("dashboard_e2e.mjs", gateway.Url.ToString().TrimEnd('/'), project);
        await node.StepAsync("connected", ScenarioWait);
        await node.StepAsync("joined", ScenarioWait);
        var started = await node.StepAsync("build-started", ScenarioWait);
        var answered = await node.StepAsync("answered", ScenarioWait);
        var done = await node.StepAsync("done", ScenarioWait);
        Assert.True(await node.ExitAsync(ScenarioWait) == 0, "dashboard_e2e.mjs failed:\n" + node.Output);

        // what the page showed is what the log holds: the build it started, the answer given in its modal, the deployment
        var events = await ReadLogAsync(gateway, project);
        var buildStarted = Assert.Single(events, e => e.Type == EventTypes.BuildStarted);
        var completed = Assert.Single(events, e => e.Type == EventTypes.BuildCompleted).Payload;
        Assert.Equal(started.GetProperty("buildId").GetString(), completed.GetProperty("buildId").GetString());
        var resolved = Assert.Single(events, e => e.Type == EventTypes.DecisionResolved).Payload;
        Assert.Equal(answered.GetProperty("decisionId").GetString(), resolved.GetProperty("decisionId").GetString());
        Assert.Equal("option-2", resolved.GetProperty("selectedOptionId").GetString());
        Assert.Equal("user", resolved.GetProperty("resolvedBy").GetString());
        Assert.Equal("e2e-user", resolved.GetProperty("userId").GetString());
        var deployed = Assert.Single(events, e => e.Type == EventTypes.DeploymentSuccess).Payload;
        Assert.Equal(deployed.GetProperty("url").GetString(), done.GetProperty("deploymentUrl").GetString());
        Assert.True(events.Count(e => e.Type == EventTypes.AgentStatusUpdate) > 4, "agent status updates in the log");
        Assert.True(buildStarted.Seq < events.Single(e => e.Type == EventTypes.DeploymentSuccess).Seq);

        // the deployment agent's card, as the log has it: completed before deployment:success
        var card = Assert.Single(done.GetProperty("agents").EnumerateArray(), a => a.GetProperty("type").GetString() == "deployment");
        Assert.Equal("completed", card.GetProperty("status").GetString());
        var deployerDone = events.Last(e => e.Type == EventTypes.AgentStatusUpdate && e.Payload.GetProperty("agentType").GetString() == "deployment");
        Assert.Equal("completed", deployerDone.Payload.GetProperty("status").GetString());
        Assert.True(deployerDone.Seq < events.Single(e => e.Type == EventTypes.DeploymentSuccess).Seq, "the deployment agent completes before deployment:success");

        // the page applied every event of the project exactly once
        Assert.Equal(events.Count, done.GetProperty("events").GetInt32());

        foreach (var screenshot in new[] { answered.GetProperty("modalScreenshot").GetString()!, done.GetProperty("screenshot").GetString()! })
        {
            Assert.True(new FileInfo(screenshot).Length > 10_000, $"screenshot {screenshot} is missing or empty");
        }
    }

    [Fact]
    public async Task Development_with_dev_enabled_serves_the_page_the_client_library_and_the_build_endpoint()
    {
        await using var gateway = await DevGateway.StartAsync("Development", devEnabled: true);

        foreach (var path in new[] { "/", "/dashboard" })
        {
            using var page = await gateway.Http.GetAsync(path);
            var html = await page.Content.ReadAsStringAsync();
            Assert.True(page.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)page.StatusCode} {html}");
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            Assert.Contains("/socket.io-client/socket.io.min.js", html, StringComparison.Ordinal);
            Assert.Contains("id=\"decision-modal\"", html, StringComparison.Ordinal);
        }

        using (var client = await gateway.Http.GetAsync("/socket.io-client/socket.io.min.js"))
        {
            Assert.Equal(HttpStatusCode.OK, client.StatusCode);
            Assert.Equal("text/javascript", client.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Socket.IO v4.8.4", await client.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        foreach (var (path, type) in new[] { ("/dashboard/app.js", "text/javascript"), ("/dashboard/app.css", "text/css") })
        {
            using var asset = await gateway.Http.GetAsync(path);
            Assert.True(asset.StatusCode == HttpStatusCode.OK, $"GET {path}: {(int)asset.StatusCode}");
            Assert.Equal(type, asset.Content.Headers.ContentType?.MediaType);
        }

        // only the page's files: nothing else of web/
        foreach (var path in new[] { "/dashboard/index.html", "/dashboard/vendor/socket.io.min.js", "/web/index.html", "/index.html" })
        {
            using var other = await gateway.Http.GetAsync(path);
            Assert.True(other.StatusCode == HttpStatusCode.NotFound, $"GET {path}: {(int)other.StatusCode}");
        }

        using (var license = await gateway.Http.GetAsync("/socket.io-client/LICENSE"))
        {
            Assert.Equal(HttpStatusCode.OK, license.StatusCode);
            Assert.Contains("MIT", await license.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // the same rules as POST /api/projects/{id}/builds, without a credential
        using (var invalid = await gateway.Http.PostAsJsonAsync("/dev/projects/shop/builds", new { requirements = "", speed = 0 }, s_json))
        {
            var body = await invalid.Content.ReadAsStringAsync();
            Assert.True(invalid.StatusCode == HttpStatusCode.BadRequest, $"{(int)invalid.StatusCode} {body}");
            Assert.Contains("\"VALIDATION_FAILED\"", body, StringComparison.Ordinal);
            Assert.Contains("\"requirements\"", body, StringComparison.Ordinal);
            Assert.Contains("\"speed\"", body, StringComparison.Ordinal);
        }

        using (var badProject = await gateway.Http.PostAsJsonAsync("/dev/projects/no%20spaces/builds", new { requirements = "A shop" }, s_json))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badProject.StatusCode);
            Assert.Contains("\"projectId\"", await badProject.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var notJson = await gateway.Http.PostAsync("/dev/projects/shop/builds", new StringContent("{not json", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
            Assert.Contains("\"INVALID_JSON\"", await notJson.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // a slow build, so that the second request finds it running
        var buildStarted = new TaskCompletionSource<EventEnvelope>(TaskCreationOptions.RunContinuationsAsynchronously);
        gateway.Services.GetRequiredService<EventPublisher>().Published += e =>
        {
            if (e.ProjectId == "dev-endpoint" && e.Type == EventTypes.BuildStarted)
            {
                buildStarted.TrySetResult(e);
            }
        };
        using var first = await gateway.Http.PostAsJsonAsync("/dev/projects/dev-endpoint/builds", new { requirements = "An online shop", speed = 0.01 }, s_json);
        var firstBody = await first.Content.ReadAsStringAsync();
        Assert.True(first.StatusCode == HttpStatusCode.Accepted, $"{(int)first.StatusCode} {firstBody}");
        var buildId = JsonDocument.Parse(firstBody).RootElement.GetProperty("buildId").GetString();
        Assert.False(string.IsNullOrEmpty(buildId));

        using var second = await gateway.Http.PostAsJsonAsync("/dev/projects/dev-endpoint/builds", new { requirements = "An online shop" }, s_json);
        Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
        Assert.Contains("\"BUILD_RUNNING\"", await second.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        var started = await buildStarted.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("dev-endpoint", started.Payload.GetProperty("projectId").GetString());
    }

    [Theory]
    [InlineData("Production", true)]
    [InlineData("Staging", true)]
    [InlineData("Development", false)]
    public async Task The_dashboard_and_the_dev_build_endpoint_do_not_exist_outside_Development_with_dev_enabled(string environment, bool devEnabled)
    {
        await using var gateway = await DevGateway.StartAsync(environment, devEnabled);

        foreach (var path in new[] { "/", "/dashboard", "/dashboard/app.js", "/dashboard/app.css", "/socket.io-client/socket.io.min.js", "/dev/token?user=x" })
        {
            using var response = await gateway.Http.GetAsync(path);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{environment}, Dev:Enabled={devEnabled}: GET {path} answered {(int)response.StatusCode}");
        }

        using var build = await gateway.Http.PostAsJsonAsync("/dev/projects/shop/builds", new { requirements = "An online shop", simulate = true }, s_json);
        Assert.True(build.StatusCode == HttpStatusCode.NotFound, $"{environment}, Dev:Enabled={devEnabled}: POST /dev/projects/shop/builds answered {(int)build.StatusCode}");
        Assert.Equal(0L, await gateway.Services.GetRequiredService<IEventLog>().LatestSeqAsync("shop"));

        // the gateway itself is up
        using var health = await gateway.Http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
    }

    private static async Task<List<EventEnvelope>> ReadLogAsync(DevGateway gateway, string projectId)
    {
        var log = gateway.Services.GetRequiredService<IEventLog>();
        var events = new List<EventEnvelope>();
        long after = 0;
        while (true)
        {
            var page = await log.ReadAsync(projectId, after, 1000);
            if (page.Count == 0)
            {
                return events;
            }

            events.AddRange(page);
            after = page[^1].Seq;
        }
    }

    /// <summary>The real gateway in a chosen environment on the real clock (the browser mints its own tokens).</summary>
    private sealed class DevGateway : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private DevGateway(WebApplication app, Uri url)
        {
            _app = app;
            Url = url;
            Http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(30) };
        }

        public Uri Url { get; }

        public HttpClient Http { get; }

        public IServiceProvider Services => _app.Services;

        public static async Task<DevGateway> StartAsync(string environment, bool devEnabled)
        {
            var app = GatewayApp.Build(["--environment", environment], b =>
            {
                b.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Urls"] = "http://127.0.0.1:0",
                    ["Builder:Jwt:Secret"] = TestGateway.Secret,
                    ["Builder:Store:Provider"] = "memory",
                    ["Builder:Dev:Enabled"] = devEnabled ? "true" : "false",
                });
                b.Logging.ClearProviders();
            });
            Assert.Equal(environment, app.Environment.EnvironmentName);
            await app.StartAsync();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new DevGateway(app, new Uri(address.TrimEnd('/') + "/"));
        }

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
