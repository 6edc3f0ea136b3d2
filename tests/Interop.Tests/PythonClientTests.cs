namespace Interop.Tests;

/// <summary>The Python client (Debian python3-socketio 5.7.x) against the .NET server.</summary>
public sealed class PythonClientTests(InteropServerFixture fixture) : IClassFixture<InteropServerFixture>
{
    private const string Python = "/usr/bin/python3";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    // python-socketio 5.7 has no connection state recovery (it never sends pid/offset)
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
        string[] args = ["python_client.py", "--url", fixture.Url.ToString(), "--transport", transport, "--scenario", scenario];
        var before = fixture.FastPathSessions;
        var result = await ChildProcess.RunAsync(Python, args, Repo.InteropDir, Deadline);
        ScriptAssert.Passed(result, Python + " " + string.Join(' ', args), Deadline);
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
