using System.Text.Json;

namespace SocketIO.Tests.Server;

/// <summary>How emitted arguments are serialized, and how received ones are read.</summary>
[Collection(ServerTestGroup.Name)]
public sealed class EmitArgumentTests
{
    public sealed record Upload(string Label, byte[] Data);

    public sealed record Person(string FirstName, int Age);

    [Fact]
    public async Task AnonymousObject_SerializesWithItsCamelCaseNamesAsWritten()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        socket.Emit("user", new { userName = "alice", isAdmin = true, scores = new[] { 1, 2 }, profile = new { displayName = "Al", nickName = (string?)null } });

        await client.ExpectAsync("42[\"user\",{\"userName\":\"alice\",\"isAdmin\":true,\"scores\":[1,2],\"profile\":{\"displayName\":\"Al\",\"nickName\":null}}]");
    }

    [Fact]
    public async Task PascalCaseMembers_AreCamelCasedByTheWebDefaults()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        socket.Emit("person", new Person("Ada", 36), new { ZipCode = "123" });

        await client.ExpectAsync("42[\"person\",{\"firstName\":\"Ada\",\"age\":36},{\"zipCode\":\"123\"}]");
    }

    [Fact]
    public async Task ScalarArguments_AndNoArguments()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        socket.Emit("none");
        socket.Emit("scalars", 1, 2.5, "s", true, null);

        await client.ExpectAsync("42[\"none\"]");
        await client.ExpectAsync("42[\"scalars\",1,2.5,\"s\",true,null]");
    }

    [Fact]
    public async Task ReservedEventName_IsRefused()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        Assert.Throws<ArgumentException>(() => socket.Emit("disconnect"));
        Assert.Throws<ArgumentException>(() => server.Io.Emit("connect"));
    }

    [Fact]
    public async Task ByteArrayNestedInAnObject_GoesAsABinaryAttachment()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        socket.Emit("file", new { name = "a.bin", content = new byte[] { 1, 2, 3 } });

        await client.ExpectAsync("451-[\"file\",{\"name\":\"a.bin\",\"content\":{\"_placeholder\":true,\"num\":0}}]");
        Assert.Equal(new byte[] { 1, 2, 3 }, await client.NextBinaryAsync());
    }

    [Fact]
    public async Task ByteArraysInArraysAndArguments_GoAsAttachmentsInOrder()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;

        socket.Emit("files", new object[] { "x", new byte[] { 9 } }, new byte[] { 7, 8 });

        await client.ExpectAsync("452-[\"files\",[\"x\",{\"_placeholder\":true,\"num\":0}],{\"_placeholder\":true,\"num\":1}]");
        Assert.Equal(new byte[] { 9 }, await client.NextBinaryAsync());
        Assert.Equal(new byte[] { 7, 8 }, await client.NextBinaryAsync());
    }

    [Fact]
    public async Task BinaryBroadcast_ReachesEveryRecipientWithItsAttachment()
    {
        await using var server = await SioTestServer.StartAsync();
        var (a, _) = await server.ConnectAsync();
        var (b, _) = await server.ConnectAsync();
        await using var _a = a;
        await using var _b = b;

        server.Io.Emit("blob", new { data = new byte[] { 0xFF, 0x00 } });

        foreach (var client in new[] { a, b })
        {
            await client.ExpectAsync("451-[\"blob\",{\"data\":{\"_placeholder\":true,\"num\":0}}]");
            Assert.Equal(new byte[] { 0xFF, 0x00 }, await client.NextBinaryAsync());
        }
    }

    [Fact]
    public async Task ReceivedBinary_ReadsThroughGetArgAndGetBinary()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var received = new Signal<(Upload? Upload, byte[] Second, int Count, bool IsPlaceholder)>();
        socket.On("upload", ctx =>
        {
            try
            {
                received.Set((ctx.GetArg<Upload>(0), ctx.GetBinary(1), ctx.Count, ctx[1].TryGetProperty("_placeholder", out _)));
            }
            catch (Exception ex)
            {
                received.Fail(ex);
            }
        });

        await client.SendAsync("452-[\"upload\",{\"label\":\"pic\",\"data\":{\"_placeholder\":true,\"num\":0}},{\"_placeholder\":true,\"num\":1}]");
        await client.SendBinaryAsync([10, 20, 30]);
        await client.SendBinaryAsync([40]);

        var (upload, second, count, isPlaceholder) = await received.WaitAsync();
        Assert.NotNull(upload);
        Assert.Equal("pic", upload.Label);
        Assert.Equal(new byte[] { 10, 20, 30 }, upload.Data);
        Assert.Equal(new byte[] { 40 }, second);
        Assert.Equal(2, count);
        Assert.True(isPlaceholder);
    }

    [Fact]
    public async Task GetBinary_OnAJsonArgument_Throws()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        var thrown = new Signal<Exception?>();
        socket.On("text", ctx =>
        {
            try
            {
                _ = ctx.GetBinary(0);
                thrown.Set(null);
            }
            catch (Exception ex)
            {
                thrown.Set(ex);
            }
        });

        await client.SendAsync("42[\"text\",\"not binary\"]");

        Assert.IsType<InvalidOperationException>(await thrown.WaitAsync());
    }

    [Fact]
    public async Task ToObjects_RoundTripsJsonAndBinary()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        socket.On("echo", ctx => socket.Emit("echo-back", ctx.ToObjects()));

        const string payload = "[\"echo\",{\"a\":1,\"bin\":{\"_placeholder\":true,\"num\":0},\"list\":[\"x\",{\"_placeholder\":true,\"num\":1}]},\"plain\",[1,{\"k\":null}],{\"_placeholder\":true,\"num\":2}]";
        await client.SendAsync("453-" + payload);
        await client.SendBinaryAsync([1]);
        await client.SendBinaryAsync([2, 2]);
        await client.SendBinaryAsync([3, 3, 3]);

        var reply = TextPacket.Parse(await client.NextAsync());
        Assert.Equal(5, reply.Type);
        Assert.Equal(3, reply.Attachments);
        var attachments = new List<byte[]> { await client.NextBinaryAsync(), await client.NextBinaryAsync(), await client.NextBinaryAsync() };

        // same structure, binaries resolved by their placeholder numbers
        var expected = JsonDocument.Parse(payload.Replace("\"echo\"", "\"echo-back\"", StringComparison.Ordinal)).RootElement;
        AssertSameJson(expected, reply.Payload, [[1], [2, 2], [3, 3, 3]], attachments);
    }

    [Fact]
    public async Task ToObjects_WithoutBinary_EchoesJsonAsIs()
    {
        await using var server = await SioTestServer.StartAsync();
        var (client, socket) = await server.ConnectAsync();
        await using var _cl = client;
        socket.On("echo", ctx => socket.Emit("echo-back", ctx.ToObjects()));

        await client.SendAsync("42[\"echo\",{\"Keep\":\"Case\",\"n\":1.5e3},[null,true],\"é\"]");

        var reply = TextPacket.Parse(await client.NextAsync());
        Assert.Equal(2, reply.Type);
        var expected = JsonDocument.Parse("[\"echo-back\",{\"Keep\":\"Case\",\"n\":1.5e3},[null,true],\"é\"]").RootElement;
        AssertSameJson(expected, reply.Payload, [], []);
    }

    /// <summary>Structural JSON equality where each placeholder must designate the same bytes on both sides.</summary>
    private static void AssertSameJson(JsonElement expected, JsonElement actual, List<byte[]> expectedBinaries, List<byte[]> actualBinaries)
    {
        if (expected.ValueKind == JsonValueKind.Object && expected.TryGetProperty("_placeholder", out _))
        {
            Assert.Equal(JsonValueKind.Object, actual.ValueKind);
            Assert.True(actual.GetProperty("_placeholder").GetBoolean());
            Assert.Equal(expectedBinaries[expected.GetProperty("num").GetInt32()], actualBinaries[actual.GetProperty("num").GetInt32()]);
            return;
        }

        Assert.Equal(expected.ValueKind, actual.ValueKind);
        switch (expected.ValueKind)
        {
            case JsonValueKind.Object:
                Assert.Equal(expected.EnumerateObject().Select(p => p.Name), actual.EnumerateObject().Select(p => p.Name));
                foreach (var property in expected.EnumerateObject())
                {
                    AssertSameJson(property.Value, actual.GetProperty(property.Name), expectedBinaries, actualBinaries);
                }

                break;
            case JsonValueKind.Array:
                Assert.Equal(expected.GetArrayLength(), actual.GetArrayLength());
                for (var i = 0; i < expected.GetArrayLength(); i++)
                {
                    AssertSameJson(expected[i], actual[i], expectedBinaries, actualBinaries);
                }

                break;
            case JsonValueKind.Number:
                Assert.Equal(expected.GetDouble(), actual.GetDouble());
                break;
            default:
                Assert.Equal(expected.ToString(), actual.ToString());
                break;
        }
    }
}
