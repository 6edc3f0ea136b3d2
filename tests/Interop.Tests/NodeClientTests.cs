namespace Interop.Tests;

/// <summary>The reference JavaScript client (socket.io-client 4.8.4) against the .NET server.</summary>
public sealed class NodeClientTests(InteropServerFixture fixture) : IClassFixture<InteropServerFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public static readonly string[] Scenarios =
    [
        "connect-auth",
        "emit-ack",
        "binary",
        "rooms",
        "namespace",
        "connect-error",
        "server-disconnect",
        "reconnect",
        "recovery",
        "recovery-auto",
    ];

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var scenario in Scenarios)
        {
            data.Add(scenario, "polling");
            data.Add(scenario, "websocket");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Scenario(string scenario, string transport)
    {
        var modules = Path.Combine(Repo.InteropDir, "node_modules", "socket.io-client");
        Assert.True(Directory.Exists(modules), $"{modules} is missing: run `npm ci` in tests/Interop (test.sh does)");

        string[] args = ["node_client.mjs", "--url", fixture.Url.ToString(), "--transport", transport, "--scenario", scenario];
        var before = fixture.FastPathSessions;
        var result = await ChildProcess.RunAsync("node", args, Repo.InteropDir, Deadline);
        ScriptAssert.Passed(result, "node " + string.Join(' ', args), Deadline);
        if (transport == "websocket" && before is not null)
        {
            var mode = InteropHost.InteropServer.WebSocketModeFromEnvironment();
            if (mode == EngineIO.EngineWebSocketMode.ConnectionPipe)
            {
                // a WebSocket-only client is answered at the connection level (as in the gateway)
                Assert.True(fixture.FastPathSessions > before, "the WebSocket-only client did not go through the connection-level handshake");
            }
            else
            {
                // the other modes turn the connection-level handshake off: Kestrel answers every request
                Assert.True(fixture.FastPathSessions == before, $"the connection-level handshake answered a client in the {mode} mode");
            }
        }
    }
}
