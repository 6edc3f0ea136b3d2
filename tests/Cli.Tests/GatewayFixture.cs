using Abuse.Tests;
using Builder.Auth;

namespace Cli.Tests;

/// <summary>
/// One gateway process for the tool's tests: the Development profile (so <c>/dev/token</c> answers
/// on loopback), an in-memory log, a heartbeat every second (a client that does not answer it is
/// dropped within two seconds).
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    private GatewayProcess? _gateway;

    public GatewayProcess Gateway => _gateway ?? throw new InvalidOperationException("not started");

    public string Url => $"http://127.0.0.1:{Gateway.Port}";

    public async Task InitializeAsync()
    {
        _gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Development",
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["Builder:Dev:Enabled"] = "true",
            ["Builder:Heartbeat:IntervalSeconds"] = "1",
            ["Builder:Heartbeat:MaxMissed"] = "1",
        });
    }

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }
    }

    /// <summary>A user token the gateway accepts.</summary>
    public static string Token(string userId, params string[] projects) => GatewayProcess.Token(userId, projects);

    /// <summary>A token that expired an hour ago.</summary>
    public static string ExpiredToken(string userId, params string[] projects)
    {
        var past = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow.AddHours(-2));
        return TokenIssuer.Issue(GatewayProcess.Secret, userId, userId, projects, TimeSpan.FromHours(1), past, null, GatewayProcess.Issuer, GatewayProcess.Audience);
    }

    /// <summary>The environment of a tool run against this gateway as <paramref name="token"/>'s user.</summary>
    public Dictionary<string, string> Env(string? token = null)
    {
        var env = new Dictionary<string, string> { ["BUILDER_URL"] = Url, ["BUILDER_API_KEY"] = GatewayProcess.ApiKey };
        if (token is not null)
        {
            env["BUILDER_TOKEN"] = token;
        }

        return env;
    }
}

[CollectionDefinition(Name)]
public sealed class GatewayCollection : ICollectionFixture<GatewayFixture>
{
    public const string Name = "gateway";
}
