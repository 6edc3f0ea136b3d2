using System.Collections.Concurrent;
using EngineIO;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SocketIO.Tests.Server;

/// <summary>The library's log messages (categories, event ids, levels) and the close/disconnect reason enums.</summary>
public sealed class LoggingAndReasonTests
{
    private const string Engine = "EngineIO.EngineIOServer";

    [Fact]
    public async Task RefusedRequestAndSessionLifecycle_AreLoggedWithEventIdsUnderTheEngineCategory()
    {
        var provider = new CapturingProvider();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(provider);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        builder.Services.AddSocketIO();
        await using var app = builder.Build();
        app.UseWebSockets();
        app.MapSocketIO("/socket.io");
        await app.StartAsync();
        var port = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        using var http = new HttpClient();

        using (var refused = await http.GetAsync(new Uri($"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling&sid=nosuchsession000000")))
        {
            Assert.Equal(400, (int)refused.StatusCode);
        }

        var open = await http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling"));
        var sid = System.Text.Json.JsonDocument.Parse(open[1..]).RootElement.GetProperty("sid").GetString()!;
        using (await http.PostAsync(new Uri($"http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling&sid={sid}"), new StringContent("1")))
        {
        }

        await Cluster.Tests.Deadline.UntilAsync(() => provider.Entries.Any(e => e.Category == Engine && e.EventId.Id == 1003), TimeSpan.FromSeconds(10), "the session's close was not logged");
        await app.StopAsync();

        var refusedEntry = Assert.Single(provider.Entries, e => e.Category == Engine && e.EventId.Id == 1000);
        Assert.Equal(("EngineIO.EngineIOServer", LogLevel.Debug, "RequestRefused"), (refusedEntry.Category, refusedEntry.Level, refusedEntry.EventId.Name));
        Assert.Contains("code 1 \"Session ID unknown\"", refusedEntry.Message, StringComparison.Ordinal);
        var opened = Assert.Single(provider.Entries, e => e.Category == Engine && e.EventId.Id == 1001);
        Assert.Equal($"Session {sid} opened over polling", opened.Message);
        var closed = Assert.Single(provider.Entries, e => e.Category == Engine && e.EventId.Id == 1003 && e.Message.Contains(sid, StringComparison.Ordinal));
        Assert.Equal($"Session {sid} closed: transport close", closed.Message);
        Assert.All(provider.Entries.Where(e => e.Category.StartsWith("EngineIO.", StringComparison.Ordinal) || e.Category.StartsWith("SocketIO.", StringComparison.Ordinal)), e => Assert.NotEqual(0, e.EventId.Id));
    }

    [Fact]
    public void CloseAndDisconnectReasons_CarryTheReferenceServersStrings()
    {
        var engine = new Dictionary<EngineCloseReasonKind, string>
        {
            [EngineCloseReasonKind.TransportClose] = "transport close",
            [EngineCloseReasonKind.TransportError] = "transport error",
            [EngineCloseReasonKind.PingTimeout] = "ping timeout",
            [EngineCloseReasonKind.ParseError] = "parse error",
            [EngineCloseReasonKind.ForcedClose] = "forced close",
            [EngineCloseReasonKind.ServerShuttingDown] = "server shutting down",
        };
        Assert.Equal(Enum.GetValues<EngineCloseReasonKind>().Length, engine.Count);
        foreach (var (kind, wire) in engine)
        {
            Assert.Equal(wire, kind.ToWireString());
            Assert.True(EngineCloseReason.TryParse(wire, out var parsed));
            Assert.Equal(kind, parsed);
            Assert.True(DisconnectReason.TryParse(wire, out var socketKind));
            Assert.Equal(wire, socketKind.ToWireString());
        }

        Assert.Equal("server namespace disconnect", DisconnectReasonKind.ServerNamespaceDisconnect.ToWireString());
        Assert.Equal("client namespace disconnect", DisconnectReasonKind.ClientNamespaceDisconnect.ToWireString());
        Assert.Equal(Enum.GetValues<DisconnectReasonKind>().Length, engine.Count + 2);
        Assert.False(EngineCloseReason.TryParse("io server disconnect", out _));
        Assert.False(DisconnectReason.TryParse(null, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => ((EngineCloseReasonKind)99).ToWireString());
    }

    private sealed record Entry(string Category, LogLevel Level, EventId EventId, string Message);

    private sealed class CapturingProvider : ILoggerProvider
    {
        public ConcurrentQueue<Entry> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class CapturingLogger(CapturingProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner.Entries.Enqueue(new Entry(category, logLevel, eventId, formatter(state, exception)));
        }
    }
}
