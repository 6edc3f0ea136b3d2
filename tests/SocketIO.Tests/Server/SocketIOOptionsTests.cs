using EngineIO;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using SocketIO.Parser;

namespace SocketIO.Tests.Server;

/// <summary>The options pattern of <c>AddSocketIO</c>: configuration binding, Configure&lt;EngineIOOptions&gt;, validation on start, the builder's choices.</summary>
public sealed class SocketIOOptionsTests
{
    private static IConfiguration Config(Dictionary<string, string?> values) => new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    [Fact]
    public void AddSocketIO_BindsASection_ThenAppliesConfigureAndEngineSetUps()
    {
        var services = new ServiceCollection();
        services.AddSocketIO(
            Config(new()
            {
                ["ConnectTimeout"] = "00:00:07",
                ["ServeMainNamespace"] = "false",
                ["HandlerConcurrency"] = "Concurrent",
                ["Engine:PingInterval"] = "00:00:05",
                ["Engine:MaxPayload"] = "2048",
                ["Engine:Transports:0"] = "websocket",
            }),
            o => o.Engine.MaxBufferedPackets = 99);
        services.Configure<EngineIOOptions>(e => e.MaxFlushDeferrals = 3);
        using var provider = services.BuildServiceProvider();

        var server = provider.GetRequiredService<SocketIOServer>();
        Assert.Same(server.Options, provider.GetRequiredService<IOptions<SocketIOOptions>>().Value);
        Assert.Same(server.Options.Engine, provider.GetRequiredService<IOptions<EngineIOOptions>>().Value);
        Assert.Equal(TimeSpan.FromSeconds(7), server.Options.ConnectTimeout);
        Assert.False(server.Options.ServeMainNamespace);
        Assert.Equal(HandlerConcurrency.Concurrent, server.Options.HandlerConcurrency);
        Assert.Equal(TimeSpan.FromSeconds(5), server.Options.Engine.PingInterval);
        Assert.Equal(2048, server.Options.Engine.MaxPayload);
        Assert.Equal(["websocket"], server.Options.Engine.Transports);
        Assert.Equal(99, server.Options.Engine.MaxBufferedPackets);
        Assert.Equal(3, server.Options.Engine.MaxFlushDeferrals);
        Assert.IsType<JsonPacketParser>(server.Parser);
    }

    [Fact]
    public void AddMessagePackParser_ChoosesTheParserOnTheBuilder()
    {
        var services = new ServiceCollection();
        services.AddSocketIO().AddMessagePackParser();
        using var provider = services.BuildServiceProvider();
        Assert.IsType<MessagePackPacketParser>(provider.GetRequiredService<SocketIOServer>().Parser);
    }

    [Theory]
    [InlineData("ConnectTimeout", "00:00:00", "ConnectTimeout must be positive")]
    [InlineData("MaxQueuedEventsPerSocket", "0", "MaxQueuedEventsPerSocket must be at least 1")]
    [InlineData("Engine:PingInterval", "-00:00:01", "Engine:PingInterval")]
    [InlineData("Engine:MaxPayload", "3", "Engine:MaxPayload")]
    [InlineData("Engine:Transports:0", "carrier-pigeon", "Engine:Transports")]
    public async Task ABadValue_StopsStartUp_WithAMessageNamingIt(string key, string value, string expected)
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.UseSetting("urls", "http://127.0.0.1:0");
        builder.Services.AddSocketIO(Config(new() { [key] = value }));
        await using var app = builder.Build();
        var e = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
