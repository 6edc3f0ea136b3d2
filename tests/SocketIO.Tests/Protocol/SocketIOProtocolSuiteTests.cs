namespace SocketIO.Tests.Protocol;

/// <summary>
/// Port of the "Socket.IO protocol" part of the official Socket.IO v5 protocol test suite
/// (docs/socket.io-protocol/v5-test-suite/test-suite.js).
/// </summary>
[Collection(ProtocolTestGroup.Name)]
public sealed class SocketIOProtocolSuiteTests(ProtocolServerFixture f)
{
    private const string Path = "/socket.io/";

    // ---- connect ----

    [Fact]
    public async Task Connect_ShouldAllowConnectionToTheMainNamespace()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("40");

        var data = await socket.ReceiveTextAsync();

        Assert.StartsWith("40", data, StringComparison.Ordinal);

        ProtocolServerFixture.AssertConnectPayload(data[2..]);

        var authPacket = await socket.ReceiveTextAsync();

        Assert.Equal("42[\"auth\",{}]", authPacket);
    }

    [Fact]
    public async Task Connect_ShouldAllowConnectionToTheMainNamespaceWithAPayload()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("40{\"token\":\"123\"}");

        var data = await socket.ReceiveTextAsync();

        Assert.StartsWith("40", data, StringComparison.Ordinal);

        ProtocolServerFixture.AssertConnectPayload(data[2..]);

        var authPacket = await socket.ReceiveTextAsync();

        Assert.Equal("42[\"auth\",{\"token\":\"123\"}]", authPacket);
    }

    [Fact]
    public async Task Connect_ShouldAllowConnectionToACustomNamespace()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("40/custom,");

        var data = await socket.ReceiveTextAsync();

        Assert.StartsWith("40/custom,", data, StringComparison.Ordinal);

        ProtocolServerFixture.AssertConnectPayload(data[10..]);

        var authPacket = await socket.ReceiveTextAsync();

        Assert.Equal("42/custom,[\"auth\",{}]", authPacket);
    }

    [Fact]
    public async Task Connect_ShouldAllowConnectionToACustomNamespaceWithAPayload()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("40/custom,{\"token\":\"abc\"}");

        var data = await socket.ReceiveTextAsync();

        Assert.StartsWith("40/custom,", data, StringComparison.Ordinal);

        ProtocolServerFixture.AssertConnectPayload(data[10..]);

        var authPacket = await socket.ReceiveTextAsync();

        Assert.Equal("42/custom,[\"auth\",{\"token\":\"abc\"}]", authPacket);
    }

    [Fact]
    public async Task Connect_ShouldDisallowConnectionToAnUnknownNamespace()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("40/random");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("44/random,{\"message\":\"Invalid namespace\"}", data);
    }

    [Fact]
    public async Task Connect_ShouldDisallowConnectionWithAnInvalidHandshake()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("4abc");

        await socket.WaitForCloseAsync();
    }

    [Fact]
    public async Task Connect_ShouldCloseTheConnectionIfNoHandshakeIsReceived()
    {
        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket"));

        await socket.WaitForCloseAsync();
    }

    // ---- disconnect ----

    [Fact]
    public async Task Disconnect_ShouldDisconnectFromTheMainNamespace()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("41");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("2", data);
    }

    [Fact]
    public async Task Disconnect_ShouldConnectThenDisconnectFromACustomNamespace()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.ReceiveAsync(); // ping

        await socket.SendTextAsync("40/custom");

        await socket.ReceiveAsync(); // Socket.IO handshake
        await socket.ReceiveAsync(); // auth packet

        await socket.SendTextAsync("41/custom");
        await socket.SendTextAsync("42[\"message\",\"message to main namespace\"]");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("42[\"message-back\",\"message to main namespace\"]", data);
    }

    // ---- message ----

    [Fact]
    public async Task Message_ShouldSendAPlainTextPacket()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("42[\"message\",1,\"2\",{\"3\":[true]}]");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("42[\"message-back\",1,\"2\",{\"3\":[true]}]", data);
    }

    [Fact]
    public async Task Message_ShouldSendAPacketWithBinaryAttachments()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
        await socket.SendBinaryAsync([1, 2, 3]);
        await socket.SendBinaryAsync([4, 5, 6]);

        var packets = await socket.ReceivePacketsAsync(3);

        Assert.Equal("452-[\"message-back\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", packets[0].Text);
        AssertBinary([1, 2, 3], packets[1]);
        AssertBinary([4, 5, 6], packets[2]);
    }

    [Fact]
    public async Task Message_ShouldSendAPlainTextPacketWithAnAck()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("42456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");

        var data = await socket.ReceiveTextAsync();

        Assert.Equal("43456[1,\"2\",{\"3\":[false]}]", data);
    }

    [Fact]
    public async Task Message_ShouldSendAPacketWithBinaryAttachmentsAndAnAck()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("452-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
        await socket.SendBinaryAsync([1, 2, 3]);
        await socket.SendBinaryAsync([4, 5, 6]);

        var packets = await socket.ReceivePacketsAsync(3);

        Assert.Equal("462-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", packets[0].Text);
        AssertBinary([1, 2, 3], packets[1]);
        AssertBinary([4, 5, 6], packets[2]);
    }

    [Fact]
    public async Task Message_ShouldCloseTheConnectionUponInvalidFormat_UnknownPacketType()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("4abc");

        await socket.WaitForCloseAsync();
    }

    [Fact]
    public async Task Message_ShouldCloseTheConnectionUponInvalidFormat_InvalidPayloadFormat()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("42{}");

        await socket.WaitForCloseAsync();
    }

    [Fact]
    public async Task Message_ShouldCloseTheConnectionUponInvalidFormat_InvalidAckId()
    {
        await using var socket = await InitSocketIOConnectionAsync();

        await socket.SendTextAsync("42abc[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");

        await socket.WaitForCloseAsync();
    }

    internal static void AssertBinary(byte[] expected, WsMessage actual)
    {
        Assert.False(actual.IsText, $"expected a binary frame, got {actual}");
        Assert.Equal(expected, actual.Binary);
    }

    /// <summary>WebSocket to the Socket.IO endpoint, Engine.IO handshake consumed.</summary>
    private async Task<RawWebSocket> OpenEngineSessionAsync()
    {
        var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket"));
        try
        {
            await socket.ReceiveAsync(); // Engine.IO handshake
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }

        return socket;
    }

    /// <summary>The suite's <c>initSocketIOConnection()</c>.</summary>
    private async Task<RawWebSocket> InitSocketIOConnectionAsync()
    {
        var socket = await OpenEngineSessionAsync();
        try
        {
            await socket.SendTextAsync("40");

            await socket.ReceiveAsync(); // Socket.IO handshake
            await socket.ReceiveAsync(); // "auth" packet
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }

        return socket;
    }
}
