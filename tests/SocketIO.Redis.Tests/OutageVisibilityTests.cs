using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace SocketIO.Redis.Tests;

/// <summary>
/// redis-server stops and comes back under our node: the outage shows in the adapter's metrics
/// (meter "SocketIO.Redis") and in its health check (Degraded, not Unhealthy: local delivery goes on).
/// </summary>
public sealed class OutageVisibilityTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private DotNetNode _ours = null!;

    public async Task InitializeAsync()
    {
        if (!redis.Running)
        {
            await redis.StartAsync();
        }

        _ours = await DotNetNode.StartAsync(redis.Configuration + ",connectTimeout=1000", "vis-" + Guid.NewGuid().ToString("N")[..8]);
    }

    public async Task DisposeAsync() => await _ours.DisposeAsync();

    [Fact]
    public async Task Metrics_ConnectedGaugeFallsAndRises_LossesAndDroppedPublishesCounted()
    {
        // this node's meter only (IMeterFactory returns the adapter's cached instance)
        var meter = _ours.Services.GetRequiredService<IMeterFactory>().Create("SocketIO.Redis");
        long connected = -1, losses = 0, publishFailures = 0;
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) =>
        {
            if (instrument.Name == "socketio.redis.connected")
            {
                Interlocked.Exchange(ref connected, value);
            }
        });
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            switch (instrument.Name)
            {
                case "socketio.redis.connection_losses":
                    Interlocked.Add(ref losses, value);
                    break;
                case "socketio.redis.publish_failures":
                    Interlocked.Add(ref publishFailures, value);
                    break;
            }
        });
        listener.Start();
        long Connected()
        {
            listener.RecordObservableInstruments();
            return Interlocked.Read(ref connected);
        }

        Assert.Equal(1, Connected());
        Assert.Equal(0, Interlocked.Read(ref losses));

        await redis.StopAsync();
        await Wait.UntilAsync(() => Connected() == 0, "the gauge at 0 while redis-server is stopped");
        await Wait.UntilAsync(() => Interlocked.Read(ref losses) >= 1, "the outage counted");
        _ours.Io.Emit("during-outage", 1);
        await Wait.UntilAsync(() => Interlocked.Read(ref publishFailures) >= 1, "the dropped publish counted");

        await redis.StartAsync();
        await Wait.UntilAsync(() => Connected() == 1, "the gauge back at 1", TimeSpan.FromSeconds(40));
        Assert.True(Interlocked.Read(ref losses) >= 1);
    }

    [Fact]
    public async Task HealthCheck_HealthyThenDegradedWhileRedisIsDown_ThenHealthyAgain()
    {
        using var http = new HttpClient { BaseAddress = new Uri(_ours.Url), Timeout = TimeSpan.FromSeconds(10) };
        var health = _ours.Services.GetRequiredService<HealthCheckService>();
        Assert.Equal("Healthy", await http.GetStringAsync("/healthz"));

        await redis.StopAsync();
        await Wait.UntilAsync(async () => await http.GetStringAsync("/healthz") == "Degraded", "/healthz Degraded while redis-server is stopped");
        _ours.Io.Emit("during-outage", 1);
        await Wait.UntilAsync(async () =>
        {
            var entry = (await health.CheckHealthAsync()).Entries["socketio-redis"];
            return entry.Status == HealthStatus.Degraded && Equals(entry.Data["connected"], false) && (long)entry.Data["publishFailures"] >= 1;
        }, "the check's data: connected false, the dropped publish counted");

        await redis.StartAsync();
        await Wait.UntilAsync(async () => await http.GetStringAsync("/healthz") == "Healthy", "/healthz Healthy after redis-server is back", TimeSpan.FromSeconds(40));
        var back = (await health.CheckHealthAsync()).Entries["socketio-redis"];
        Assert.Equal(true, back.Data["connected"]);
    }
}
