using Builder.Tests.Infrastructure;

namespace Builder.Tests.Runner;

/// <summary>Many builds at once: each project's room gets its own events, all of them, in order.</summary>
public sealed class ConcurrentBuildsTests
{
    private const int Builds = 50;

    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Fifty_concurrent_builds_each_client_sees_only_and_all_of_its_projects_events_in_order()
    {
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Heartbeat:IntervalSeconds"] = "100000");
        var projects = Enumerable.Range(0, Builds).Select(i => $"shop-many-{i:00}").ToArray();
        var clients = new BuilderClient[Builds];
        try
        {
            var joinedSeq = new long[Builds];
            await Task.WhenAll(projects.Select(async (project, i) =>
            {
                clients[i] = gateway.Client(gateway.Token($"user-{i}", [project]));
                await clients[i].ConnectAsync();
                joinedSeq[i] = (await clients[i].JoinAsync(project)).GetProperty("seq").GetInt64();
            })).WaitAsync(Deadline);

            var buildIds = await Task.WhenAll(projects.Select(project => BuildApi.StartAsync(gateway, project))).WaitAsync(Deadline);

            // each client answers its own decision (alternating options) and reads to the end of its build
            var runs = await Task.WhenAll(projects.Select((project, i) => EventStream.RunToEndAsync(clients[i], answer: i % 2 == 0 ? "option-1" : "option-2", wait: Deadline))).WaitAsync(Deadline);

            for (var i = 0; i < Builds; i++)
            {
                var events = runs[i];
                var project = projects[i];
                Assert.True(events[^1].Name == "build:completed", $"{project} ended with {events[^1].Name}:\n{EventStream.Describe(events)}");
                Assert.Equal(buildIds[i], events[^1].Payload().GetProperty("buildId").GetString());
                BuildAssertions.Contiguous(events, project, after: joinedSeq[i]);
                BuildAssertions.CompletedBuild(events, project, deployed: false);
                var resolved = Assert.Single(events.Payloads("user:decision:resolved"));
                Assert.Equal($"user-{i}", resolved.GetProperty("userId").GetString());
                Assert.Equal(i % 2 == 0 ? "Modern Dashboard" : "Classic Table", BuildAssertions.Output(events, "ui").GetProperty("layout").GetString());
            }

            // nothing of another project arrived after the end either
            await Task.WhenAll(clients.Select(c => c.BarrierAsync())).WaitAsync(Deadline);
            for (var i = 0; i < Builds; i++)
            {
                var late = clients[i].DrainAll().Where(EventStream.IsEnvelope).ToList();
                Assert.True(late.Count == 0, $"{projects[i]} got events after build:completed:\n{EventStream.Describe(late)}");
            }
        }
        finally
        {
            await Task.WhenAll(clients.Where(c => c is not null).Select(c => c.DisposeAsync().AsTask()));
        }
    }
}
