using System.Text.Json;

namespace SocketIO.Tests.Protocol;

/// <summary>Socket.IO behaviour beyond the official suite.</summary>
[Collection(ProtocolTestGroup.Name)]
public sealed class SocketIOExtraTests(ProtocolServerFixture f)
{
    private const string Path = "/socket.io/";
    private const string RS = ProtocolServerFixture.RecordSeparator;

    [Fact]
    public async Task Connect_TwoSocketsInOneNamespaceGetDistinct20CharacterIds()
    {
        await using var first = await OpenEngineSessionAsync();
        await using var second = await OpenEngineSessionAsync();

        await first.SendTextAsync("40");
        await second.SendTextAsync("40");

        var firstConnect = await first.ReceiveTextAsync();
        var secondConnect = await second.ReceiveTextAsync();
        Assert.StartsWith("40{", firstConnect, StringComparison.Ordinal);
        Assert.StartsWith("40{", secondConnect, StringComparison.Ordinal);
        var firstId = ProtocolServerFixture.AssertConnectPayload(firstConnect[2..]);
        var secondId = ProtocolServerFixture.AssertConnectPayload(secondConnect[2..]);

        Assert.Equal(20, firstId.Length);
        Assert.Equal(20, secondId.Length);
        Assert.NotEqual(firstId, secondId);
    }

    [Fact]
    public async Task Connect_OneConnectionInTwoNamespacesGetsDistinctSocketIds()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("40");
        var main = await socket.ReceiveTextAsync();
        Assert.StartsWith("40{", main, StringComparison.Ordinal);
        Assert.Equal("42[\"auth\",{}]", await socket.ReceiveTextAsync());

        await socket.SendTextAsync("40/custom,");
        var custom = await socket.ReceiveTextAsync();
        Assert.StartsWith("40/custom,{", custom, StringComparison.Ordinal);
        Assert.Equal("42/custom,[\"auth\",{}]", await socket.ReceiveTextAsync());

        var mainId = ProtocolServerFixture.AssertConnectPayload(main[2..]);
        var customId = ProtocolServerFixture.AssertConnectPayload(custom["40/custom,".Length..]);
        Assert.Equal(20, mainId.Length);
        Assert.Equal(20, customId.Length);
        Assert.NotEqual(mainId, customId);
    }

    [Theory]
    [InlineData("40/custom")]
    [InlineData("40/custom,")]
    public async Task Connect_CustomNamespaceWithAndWithoutTrailingComma(string connect)
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync(connect);

        var data = await socket.ReceiveTextAsync();
        Assert.StartsWith("40/custom,", data, StringComparison.Ordinal);
        ProtocolServerFixture.AssertConnectPayload(data["40/custom,".Length..]);
        Assert.Equal("42/custom,[\"auth\",{}]", await socket.ReceiveTextAsync());

        // the namespace is usable
        await socket.SendTextAsync("42/custom,[\"message\",\"hi\"]");
        Assert.Equal("42/custom,[\"message-back\",\"hi\"]", await socket.ReceiveTextAsync());
    }

    [Fact]
    public async Task Message_EventBeforeConnectIsAnError()
    {
        await using var socket = await OpenEngineSessionAsync();

        await socket.SendTextAsync("42[\"message\",\"too early\"]");

        await socket.WaitForCloseAsync();
        Assert.DoesNotContain(socket.DrainBufferedMessages(), m => m.Text?.Contains("message-back", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Message_EventToANamespaceNotConnectedIsAnError()
    {
        await using var socket = await OpenEngineSessionAsync();
        await socket.SendTextAsync("40");
        Assert.StartsWith("40{", await socket.ReceiveTextAsync(), StringComparison.Ordinal);
        Assert.Equal("42[\"auth\",{}]", await socket.ReceiveTextAsync());

        await socket.SendTextAsync("42/custom,[\"message\",\"not connected there\"]");

        await socket.WaitForCloseAsync();
        Assert.DoesNotContain(socket.DrainBufferedMessages(), m => m.Text?.Contains("message-back", StringComparison.Ordinal) == true);
    }

    [Fact]
    public async Task Polling_BinaryEventAttachmentsComeBackBase64Encoded()
    {
        var sid = await f.InitLongPollingSessionAsync(Path);
        var url = $"{Path}?EIO=4&transport=polling&sid={sid}";

        var connect = await f.PostAsync(url, "40");
        Assert.Equal(200, connect.Status);
        var handshake = await f.PollPacketsAsync(Path, sid, 2);
        Assert.StartsWith("40{", handshake[0], StringComparison.Ordinal);
        ProtocolServerFixture.AssertConnectPayload(handshake[0][2..]);
        Assert.Equal("42[\"auth\",{}]", handshake[1]);

        // one binary event: the header packet, then each attachment as a base64 "b" packet
        var push = await f.PostAsync(url, $"452-[\"message\",{{\"_placeholder\":true,\"num\":0}},{{\"_placeholder\":true,\"num\":1}}]{RS}bAQID{RS}bBAUG");
        Assert.Equal(200, push.Status);
        Assert.Equal("ok", push.Body);

        var packets = await f.PollPacketsAsync(Path, sid, 3);
        Assert.Equal(
            ["452-[\"message-back\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", "bAQID", "bBAUG"],
            packets);

        // with an ack: the attachments of the BINARY_ACK come back the same way
        push = await f.PostAsync(url, $"451-7[\"message-with-ack\",{{\"_placeholder\":true,\"num\":0}}]{RS}bCQgH");
        Assert.Equal(200, push.Status);

        packets = await f.PollPacketsAsync(Path, sid, 2);
        Assert.Equal(["461-7[{\"_placeholder\":true,\"num\":0}]", "bCQgH"], packets);
    }

    [Fact]
    public async Task Upgrade_EventEmittedDuringUpgradeIsFlushedOverWebSocket()
    {
        var sid = await f.InitLongPollingSessionAsync(Path);
        var url = $"{Path}?EIO=4&transport=polling&sid={sid}";
        Assert.Equal(200, (await f.PostAsync(url, "40")).Status);
        var handshake = await f.PollPacketsAsync(Path, sid, 2);
        Assert.StartsWith("40{", handshake[0], StringComparison.Ordinal);

        await using var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket&sid={sid}"));
        await socket.SendTextAsync("2probe");
        Assert.Equal("3probe", await socket.ReceiveTextAsync());

        // sent over polling while the upgrade is pending and no poll is open: the server's
        // "message-back" (text and binary) must wait and then go out over the WebSocket
        var push = await f.PostAsync(url, $"42[\"message\",\"during upgrade\"]{RS}451-[\"message\",{{\"_placeholder\":true,\"num\":0}}]{RS}bAQID");
        Assert.Equal(200, push.Status);

        await socket.SendTextAsync("5");

        Assert.Equal("42[\"message-back\",\"during upgrade\"]", (await socket.ReceiveAnsweringPingsAsync()).Text);
        Assert.Equal("451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]", (await socket.ReceiveAnsweringPingsAsync()).Text);
        SocketIOProtocolSuiteTests.AssertBinary([1, 2, 3], await socket.ReceiveAnsweringPingsAsync());

        await socket.SendTextAsync("42[\"message\",\"after upgrade\"]");
        Assert.Equal("42[\"message-back\",\"after upgrade\"]", (await socket.ReceiveAnsweringPingsAsync()).Text);
    }

    [Fact]
    public async Task Connect_AuthPayloadIsEchoedOverPolling()
    {
        var sid = await f.InitLongPollingSessionAsync(Path);
        Assert.Equal(200, (await f.PostAsync($"{Path}?EIO=4&transport=polling&sid={sid}", "40{\"token\":\"xyz\"}")).Status);

        var packets = await f.PollPacketsAsync(Path, sid, 2);
        Assert.StartsWith("40{", packets[0], StringComparison.Ordinal);
        using var auth = JsonDocument.Parse(packets[1][2..]);
        Assert.Equal("auth", auth.RootElement[0].GetString());
        Assert.Equal("xyz", auth.RootElement[1].GetProperty("token").GetString());
    }

    private async Task<RawWebSocket> OpenEngineSessionAsync()
    {
        var socket = await RawWebSocket.ConnectAsync(f.WsUri($"{Path}?EIO=4&transport=websocket"));
        try
        {
            var open = await socket.ReceiveTextAsync(); // Engine.IO handshake
            Assert.StartsWith("0{", open, StringComparison.Ordinal);
        }
        catch
        {
            await socket.DisposeAsync();
            throw;
        }

        return socket;
    }
}
