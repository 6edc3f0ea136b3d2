using Builder.Events;
using Builder.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Builder.Tests;

/// <summary>The in-process typed API of producers: the same validation, log and room as HTTP and Redis.</summary>
public sealed class InProcessPublishTests
{
    [Fact]
    public async Task A_typed_payload_published_in_process_reaches_the_room_stamped()
    {
        await using var gateway = await TestGateway.StartAsync();
        await using var client = gateway.Client(gateway.Token("alice", ["p1"]));
        await client.ConnectAsync();
        await client.JoinAsync("p1");
        var publisher = gateway.Services.GetRequiredService<EventPublisher>();

        var result = await publisher.PublishAsync("p1", "agent:status:update", new { agentId = "agent-7", agentType = "database", status = "working", currentTask = "Designing the schema", progress = 30 });
        Assert.True(result.Ok);
        Assert.Equal(1, result.Envelope!.Seq);

        var received = await client.NextAsync("agent:status:update");
        Assert.Equal(result.Envelope.EventId, received.GetProperty("eventId").GetString());
        Assert.Equal("Designing the schema", received.GetProperty("payload").GetProperty("currentTask").GetString());
    }

    [Fact]
    public async Task An_invalid_typed_payload_is_refused_naming_its_fields_and_nothing_is_published()
    {
        await using var gateway = await TestGateway.StartAsync();
        var publisher = gateway.Services.GetRequiredService<EventPublisher>();

        var result = await publisher.PublishAsync("p1", "deployment:progress", new { deploymentId = "d1", environment = "test", stage = "shipping", progress = 140 });
        Assert.False(result.Ok);
        Assert.Equal(["payload.stage", "payload.progress"], result.Errors.Select(e => e.Field));
        Assert.Equal(0, await gateway.Services.GetRequiredService<IEventLog>().LatestSeqAsync("p1"));
    }
}
