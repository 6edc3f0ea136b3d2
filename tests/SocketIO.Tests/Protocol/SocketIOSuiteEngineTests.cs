namespace SocketIO.Tests.Protocol;

/// <summary>
/// Port of the "Engine.IO protocol" part of the official Socket.IO v5 protocol test suite
/// (docs/socket.io-protocol/v5-test-suite/test-suite.js), run against the Socket.IO endpoint.
/// </summary>
[Collection(ProtocolTestGroup.Name)]
public sealed class SocketIOSuiteEngineTests(ProtocolServerFixture f)
{
    private const string Path = "/socket.io/";

    // ---- handshake / HTTP long-polling ----

    [Fact]
    public Task Handshake_Polling_ShouldSuccessfullyOpenASession() => EngineScenarios.Polling_SuccessfullyOpensASession(f, Path);

    [Fact]
    public Task Handshake_Polling_ShouldFailWithAnInvalidEioQueryParameter() => EngineScenarios.Polling_FailsWithAnInvalidEioQueryParameter(f, Path);

    [Fact]
    public Task Handshake_Polling_ShouldFailWithAnInvalidTransportQueryParameter() => EngineScenarios.Polling_FailsWithAnInvalidTransportQueryParameter(f, Path);

    [Fact]
    public Task Handshake_Polling_ShouldFailWithAnInvalidRequestMethod() => EngineScenarios.Polling_FailsWithAnInvalidRequestMethod(f, Path);

    // ---- handshake / WebSocket ----

    [Fact]
    public Task Handshake_WebSocket_ShouldSuccessfullyOpenASession() => EngineScenarios.WebSocket_SuccessfullyOpensASession(f, Path);

    [Fact]
    public Task Handshake_WebSocket_ShouldFailWithAnInvalidEioQueryParameter() => EngineScenarios.WebSocket_FailsWithAnInvalidEioQueryParameter(f, Path);

    [Fact]
    public Task Handshake_WebSocket_ShouldFailWithAnInvalidTransportQueryParameter() => EngineScenarios.WebSocket_FailsWithAnInvalidTransportQueryParameter(f, Path);

    // ---- heartbeat ----

    [Fact]
    public Task Heartbeat_Polling_ShouldSendPingPongPackets() => EngineScenarios.Polling_SendsPingPongPackets(f, Path);

    [Fact]
    public Task Heartbeat_Polling_ShouldCloseTheSessionUponPingTimeout() => EngineScenarios.Polling_ClosesTheSessionUponPingTimeout(f, Path);

    [Fact]
    public Task Heartbeat_WebSocket_ShouldSendPingPongPackets() => EngineScenarios.WebSocket_SendsPingPongPackets(f, Path);

    [Fact]
    public Task Heartbeat_WebSocket_ShouldCloseTheSessionUponPingTimeout() => EngineScenarios.WebSocket_ClosesTheSessionUponPingTimeout(f, Path);

    // ---- close ----

    [Fact]
    public Task Close_Polling_ShouldForcefullyCloseTheSession() => EngineScenarios.Polling_ForcefullyClosesTheSession(f, Path);

    [Fact]
    public Task Close_WebSocket_ShouldForcefullyCloseTheSession() => EngineScenarios.WebSocket_ForcefullyClosesTheSession(f, Path);

    // ---- upgrade ----

    [Fact]
    public async Task Upgrade_ShouldSuccessfullyUpgradeFromPollingToWebSocket()
    {
        var (_, socket) = await EngineScenarios.ProbeUpgradeAsync(f, Path);
        await using var upgrading = socket;

        // complete upgrade
        await socket.SendTextAsync("5");
    }

    [Fact]
    public Task Upgrade_ShouldIgnoreHttpRequestsWithSameSidAfterUpgrade() =>
        EngineScenarios.IgnoresHttpRequestsWithSameSidAfterUpgrade(f, Path, echo: false);

    [Fact]
    public Task Upgrade_ShouldIgnoreWebSocketConnectionWithSameSidAfterUpgrade() =>
        EngineScenarios.IgnoresWebSocketConnectionWithSameSidAfterUpgrade(f, Path, echo: false);
}
