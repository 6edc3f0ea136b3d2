using InteropHost;

namespace Interop.Tests;

/// <summary>An <see cref="InteropServer"/> set up with <c>AddSocketIO().AddMessagePackParser()</c>.</summary>
public sealed class MessagePackServerFixture : IAsyncLifetime
{
    private InteropServer? _server;

    public Uri Url => _server?.Url ?? throw new InvalidOperationException("server not started");

    public async Task InitializeAsync() => _server = await InteropServer.StartAsync(messagePack: true);

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }
}

/// <summary>
/// The reference JavaScript client with npm's socket.io-msgpack-parser 3.0.2 (pinned in
/// tests/Interop/package-lock.json) against a server using <c>MessagePackPacketParser</c>: the
/// same scenarios as with the default parser (events, acks, binary, rooms, namespaces, errors,
/// recovery), over polling and WebSocket.
/// </summary>
public sealed class NodeClientMessagePackTests(MessagePackServerFixture fixture) : IClassFixture<MessagePackServerFixture>
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public static TheoryData<string, string> Cases() => NodeClientTests.Cases();

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Scenario(string scenario, string transport)
    {
        var modules = Path.Combine(Repo.InteropDir, "node_modules", "socket.io-msgpack-parser");
        Assert.True(Directory.Exists(modules), $"{modules} is missing: run `npm ci` in tests/Interop (test.sh does)");

        string[] args = ["node_client.mjs", "--url", fixture.Url.ToString(), "--transport", transport, "--scenario", scenario, "--parser", "msgpack"];
        var result = await ChildProcess.RunAsync("node", args, Repo.InteropDir, Deadline);
        ScriptAssert.Passed(result, "node " + string.Join(' ', args), Deadline);
    }

    [Fact]
    public async Task A_json_client_is_refused_by_a_messagepack_server()
    {
        // the parsers do not mix: the default client's text packets close the session (a parse
        // error), so the scenario fails rather than hanging or being half understood
        string[] args = ["node_client.mjs", "--url", fixture.Url.ToString(), "--transport", "websocket", "--scenario", "emit-ack"];
        var result = await ChildProcess.RunAsync("node", args, Repo.InteropDir, Deadline);
        Assert.False(result.TimedOut, result.Output);
        Assert.NotEqual(0, result.ExitCode);
    }
}
