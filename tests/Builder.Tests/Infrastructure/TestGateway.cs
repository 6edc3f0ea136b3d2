using System.Net.Http.Json;
using System.Text.Json;
using Builder.Auth;
using Builder.Gateway;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Builder.Tests.Infrastructure;

/// <summary>
/// The real gateway (<see cref="GatewayApp.Build"/>) on Kestrel, 127.0.0.1 port 0, driven by a
/// <see cref="FakeTimeProvider"/> so that decision timeouts, heartbeats and token expiry happen
/// when a test advances the clock.
/// </summary>
public sealed class TestGateway : IAsyncDisposable
{
    public const string Secret = "builder-tests-secret-0123456789-abcdefghij";
    public const string Issuer = "test-issuer";
    public const string Audience = "test-aud";
    public const string ApiKey = "test-ingest-key-0123456789";

    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static readonly JsonSerializerOptions s_json = new(JsonSerializerDefaults.Web);

    private readonly WebApplication _app;
    private TaskCompletionSource _longPollWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private TestGateway(WebApplication app, FakeTimeProvider time, Uri url)
    {
        _app = app;
        Time = time;
        Url = url;
        Http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(30) };
    }

    public FakeTimeProvider Time { get; }

    /// <summary>The base address, e.g. http://127.0.0.1:43123/.</summary>
    public Uri Url { get; }

    /// <summary>The /builder namespace.</summary>
    public Uri BuilderUrl => new(Url, "/builder");

    public HttpClient Http { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>Completes when a request with <c>?wait=</c> is parked inside the endpoint (a long-poll in progress).</summary>
    public Task LongPollWaiting => _longPollWaiting.Task;

    public void ResetLongPollWaiting() => _longPollWaiting = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <param name="services">Changes to the gateway's services, applied after its own registrations (test doubles).</param>
    public static async Task<TestGateway> StartAsync(Action<Dictionary<string, string?>>? configure = null, FakeTimeProvider? time = null, Action<IServiceCollection>? services = null)
    {
        time ??= new FakeTimeProvider(DateTimeOffset.UtcNow);
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = Secret,
            ["Builder:Jwt:Issuer"] = Issuer,
            ["Builder:Jwt:Audience"] = Audience,
            ["Builder:Store:Provider"] = "memory",
            ["Builder:Ingest:ApiKeys:0"] = ApiKey,
            ["Builder:Heartbeat:IntervalSeconds"] = "30",
            ["Builder:Heartbeat:MaxMissed"] = "2",

            // the rate limiter refills on the fake clock, which only moves when a test says so
            ["Builder:Limits:ClientEventBurst"] = "100000",
        };
        configure?.Invoke(settings);

        var app = GatewayApp.Build([], b =>
        {
            b.Configuration.AddInMemoryCollection(settings);
            b.Services.AddSingleton<TimeProvider>(time);
            b.Logging.ClearProviders();
            if (services is not null)
            {
                b.Host.ConfigureContainer<IServiceCollection>((_, collection) => services(collection));
            }
        });

        TestGateway? gateway = null;

        // Runs before the endpoints: once the endpoint of a long-poll returned an unfinished task it is parked in its wait.
        app.Use(async (context, next) =>
        {
            var pending = next(context);
            if (context.Request.Query.ContainsKey("wait") && !pending.IsCompleted)
            {
                gateway?._longPollWaiting.TrySetResult();
            }

            await pending;
        });

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        gateway = new TestGateway(app, time, new Uri(address.TrimEnd('/') + "/"));
        return gateway;
    }

    /// <summary>An HS256 token signed with the gateway's secret, issuer and audience on the fake clock.</summary>
    public string Token(string userId, IEnumerable<string> projects, TimeSpan? lifetime = null, string? role = null, string? username = null) =>
        TokenIssuer.Issue(Secret, userId, username ?? userId + "_name", projects, lifetime ?? TimeSpan.FromHours(1), Time, role, Issuer, Audience);

    public BuilderClient Client(string? token, SocketIOClient.Transport.TransportProtocol transport = SocketIOClient.Transport.TransportProtocol.WebSocket) =>
        new(BuilderUrl, token, transport);

    /// <summary>POST /api/projects/{id}/events with the ingest API key.</summary>
    public Task<HttpResponseMessage> PublishRawAsync(string projectId, object body, Action<HttpRequestMessage>? credential = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/events")
        {
            Content = JsonContent.Create(body, options: s_json),
        };
        if (credential is null)
        {
            request.Headers.Add("X-Api-Key", ApiKey);
        }
        else
        {
            credential(request);
        }

        return Http.SendAsync(request);
    }

    /// <summary>Publishes an event that must be accepted; returns the stamped envelope.</summary>
    public async Task<JsonElement> PublishAsync(string projectId, string type, object payload)
    {
        using var response = await PublishRawAsync(projectId, new { type, payload });
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Accepted, $"publish {type} to {projectId}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    /// <summary>POST /api/projects/{id}/decisions; returns the decision id.</summary>
    public async Task<string> CreateDecisionAsync(string projectId, object body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"api/projects/{projectId}/decisions")
        {
            Content = JsonContent.Create(body, options: s_json),
        };
        request.Headers.Add("X-Api-Key", ApiKey);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == System.Net.HttpStatusCode.Created, $"create decision in {projectId}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.GetProperty("decisionId").GetString()!;
    }

    /// <summary>GET /api/decisions/{id}[?wait=N]; returns status code and body.</summary>
    public async Task<(int Status, JsonElement Body)> GetDecisionAsync(string decisionId, int? wait = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"api/decisions/{decisionId}" + (wait is null ? string.Empty : $"?wait={wait}"));
        request.Headers.Add("X-Api-Key", ApiKey);
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    public static object TwoOptionDecision(string agentId = "agent-1", int timeout = 300, string? defaultOptionId = null) => new
    {
        agentId,
        question = "Which layout style do you prefer?",
        options = new object[]
        {
            new { id = "option-1", label = "Modern Dashboard", description = "Card-based layout with charts", preview = "url-to-preview-image" },
            new { id = "option-2", label = "Classic Table", description = "Traditional table-based layout" },
        },
        timeout,
        defaultOptionId,
    };

    public async Task StopAsync() => await _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        try
        {
            await _app.StopAsync();
        }
        catch (ObjectDisposedException)
        {
            // already stopped and disposed
        }

        await _app.DisposeAsync();
    }
}
