using System.Net;
using System.Net.Sockets;

namespace Cli.Tests;

/// <summary>Each failure the tool reports: a clear line on stderr and its own exit code.</summary>
[Collection(GatewayCollection.Name)]
public sealed class ErrorTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Unreachable_gateway_exits_3()
    {
        var port = FreePort();
        var (exit, _, stderr) = await CliProcess.RunAsync([$"http://127.0.0.1:{port}/builder", "--auth", "{\"token\":\"x\"}", "--on", "*"]);
        Assert.Equal(3, exit);
        Assert.Contains($"The gateway at http://127.0.0.1:{port}/ is unreachable", stderr, StringComparison.Ordinal);

        var (watchExit, _, watchErr) = await CliProcess.RunAsync(["watch", "p", "-g", $"http://127.0.0.1:{port}", "-t", "x"]);
        Assert.Equal(3, watchExit);
        Assert.Contains("unreachable", watchErr, StringComparison.Ordinal);

        var (publishExit, _, publishErr) = await CliProcess.RunAsync(["publish", "p", "build:progress", "{}", "-g", $"http://127.0.0.1:{port}", "--api-key", "k"]);
        Assert.Equal(3, publishExit);
        Assert.Contains("unreachable", publishErr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("expired", "TOKEN_EXPIRED")]
    [InlineData("garbage", "TOKEN_INVALID")]
    [InlineData("missing", "TOKEN_MISSING")]
    public async Task Refused_token_exits_4_with_the_gateways_code(string kind, string code)
    {
        var auth = kind switch
        {
            "expired" => $"{{\"token\":\"{GatewayFixture.ExpiredToken("late", "p")}\"}}",
            "garbage" => "{\"token\":\"not-a-jwt\"}",
            _ => "{}",
        };
        var (exit, stdout, stderr) = await CliProcess.RunAsync([$"{fixture.Url}/builder", "--auth", auth, "--emit", "join-project", "{\"projectId\":\"p\"}", "--on", "*"]);
        Assert.Equal(4, exit);
        Assert.Contains($"The gateway refused the connection to /builder: Authentication failed ({code}", stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, stdout);
    }

    [Fact]
    public async Task Forbidden_project_exits_5()
    {
        var token = GatewayFixture.Token("outsider", "own-project");
        var (exit, stdout, stderr) = await CliProcess.RunAsync([$"{fixture.Url}/builder", "--auth", $"{{\"token\":\"{token}\"}}", "--emit", "join-project", "{\"projectId\":\"other-project\"}", "--on", "*"]);
        Assert.Equal(5, exit);
        Assert.Contains("join-project refused: FORBIDDEN: You may not access project \"other-project\".", stderr, StringComparison.Ordinal);
        Assert.Contains("\"ok\":false", stdout, StringComparison.Ordinal);

        var (replayExit, _, replayErr) = await CliProcess.RunAsync(["replay", "other-project", "--from", "0"], fixture.Env(token));
        Assert.Equal(5, replayExit);
        Assert.Contains("FORBIDDEN", replayErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_json_names_the_argument_and_the_place_and_exits_2()
    {
        var (exit, _, stderr) = await CliProcess.RunAsync([$"{fixture.Url}/builder", "--auth", "{\"token\":\"t\"}", "--emit", "join-project", "{\"projectId\":xxx}"]);
        Assert.Equal(2, exit);
        Assert.Contains("--emit 'join-project' argument 1 is not valid JSON (line 1, column 14)", stderr, StringComparison.Ordinal);
        Assert.Contains("    {\"projectId\":xxx}\n                 ^", stderr.Replace("\r", string.Empty, StringComparison.Ordinal), StringComparison.Ordinal);

        var (authExit, _, authErr) = await CliProcess.RunAsync([$"{fixture.Url}/builder", "--auth", "{token:1}"]);
        Assert.Equal(2, authExit);
        Assert.Contains("--auth is not valid JSON (line 1, column 2)", authErr, StringComparison.Ordinal);

        var (secondExit, _, secondErr) = await CliProcess.RunAsync([$"{fixture.Url}/builder", "--emit", "leave-project", "{}", "--emit", "x", "1", "[1,"]);
        Assert.Equal(2, secondExit);
        Assert.Contains("--emit 'x' argument 2 is not valid JSON (line 1, column 3)", secondErr, StringComparison.Ordinal);

        var (publishExit, _, publishErr) = await CliProcess.RunAsync(["publish", "p", "build:progress", "{\"phase\": }"], fixture.Env());
        Assert.Equal(2, publishExit);
        Assert.Contains("<payload> (the third argument of publish) is not valid JSON (line 1, column 11)", publishErr, StringComparison.Ordinal);

        var (faultsExit, _, faultsErr) = await CliProcess.RunAsync(["build", "start", "p", "--faults", "[{]"], fixture.Env());
        Assert.Equal(2, faultsExit);
        Assert.Contains("--faults is not valid JSON", faultsErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Refused_api_key_exits_4_and_an_invalid_event_exits_1_with_its_fields()
    {
        var env = fixture.Env();
        env["BUILDER_API_KEY"] = "wrong-key";
        var (exit, _, stderr) = await CliProcess.RunAsync(["publish", "p", "build:progress", "{}"], env);
        Assert.Equal(4, exit);
        Assert.Contains("401 INVALID_API_KEY", stderr, StringComparison.Ordinal);

        var (invalidExit, _, invalidErr) = await CliProcess.RunAsync(["publish", "p", "agent:status:update", "{\"agentId\":\"a\",\"agentType\":\"ui\",\"status\":\"working\",\"progress\":101}"], fixture.Env());
        Assert.Equal(1, invalidExit);
        Assert.Contains("400 VALIDATION_FAILED", invalidErr, StringComparison.Ordinal);
        Assert.Contains("payload.progress: must be between 0 and 100", invalidErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_option_and_missing_url_exit_2()
    {
        var (exit, _, stderr) = await CliProcess.RunAsync(["watch", "p", "--no-such-option"]);
        Assert.Equal(2, exit);
        Assert.Contains("--no-such-option", stderr, StringComparison.Ordinal);

        var (bareExit, _, bareErr) = await CliProcess.RunAsync([]);
        Assert.Equal(2, bareExit);
        Assert.Contains("A gateway URL is required", bareErr, StringComparison.Ordinal);

        var (urlExit, _, urlErr) = await CliProcess.RunAsync(["ftp://x/builder"]);
        Assert.Equal(2, urlExit);
        Assert.Contains("is not a gateway URL", urlErr, StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
