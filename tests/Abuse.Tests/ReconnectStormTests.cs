using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Abuse.Tests;

/// <summary>
/// A network blip drops every viewer at once and they all come back: the gateway takes the storm,
/// each viewer rejoins with <c>lastSeq</c> and gets exactly the events it missed, in order, and
/// nothing is left behind once they are gone.
/// </summary>
public sealed class ReconnectStormTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Phase = TimeSpan.FromSeconds(120);

    private static int Clients => int.TryParse(Environment.GetEnvironmentVariable("ABUSE_STORM_CLIENTS"), out var n) ? n : 5000;

    [Fact]
    public async Task A_reconnect_storm_of_thousands_of_viewers_loses_no_event()
    {
        var clients = Clients;
        const int PerProject = 100;
        const int EventsPerRound = 5;
        var projects = Math.Max(1, clients / PerProject);
        await using var gateway = await GatewayProcess.StartAsync(new Dictionary<string, string>
        {
            ["Builder:Limits:MaxConnectionsPerAddress"] = (clients * 2 + 100).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Builder:Limits:MaxHandshakesPerAddress"] = (clients * 2 + 100).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var baseline = await gateway.MetricAsync("process_resident_memory_bytes");
        string Project(int i) => $"storm-{i % projects}";
        var tokens = Enumerable.Range(0, clients).Select(i => GatewayProcess.Token($"viewer-{i}", Project(i))).ToArray();

        // 1. everyone connects and joins
        var watch = Stopwatch.StartNew();
        var first = await ConnectAllAsync(gateway, tokens, i => new { projectId = Project(i) });
        output.WriteLine($"{clients} connected and joined in {watch.Elapsed.TotalSeconds:0.0} s");

        // 2. a round of events; everyone sees it
        await PublishRoundAsync(gateway, projects, EventsPerRound);
        await Deadline.UntilAsync(() => first.All(c => c.Count >= EventsPerRound), Phase, "every viewer to receive the first round");

        // 3. the blip: every connection dropped at once, events go on meanwhile
        var lastSeen = first.Select(c => c.LastSeq).ToArray();
        await Task.WhenAll(first.Select(c => c.DisposeAsync().AsTask()));
        await PublishRoundAsync(gateway, projects, EventsPerRound);

        // 4. the storm: all come back with lastSeq while a third round is published
        watch.Restart();
        var rejoin = ConnectAllAsync(gateway, tokens, i => new { projectId = Project(i), lastSeq = lastSeen[i] });
        await PublishRoundAsync(gateway, projects, EventsPerRound);
        var second = await rejoin;
        output.WriteLine($"{clients} reconnected and rejoined in {watch.Elapsed.TotalSeconds:0.0} s");
        const int Total = 3 * EventsPerRound;
        await Deadline.UntilAsync(() => second.All(c => c.LastSeq >= Total), Phase, "every viewer to catch up");
        for (var i = 0; i < clients; i++)
        {
            var expected = Enumerable.Range((int)lastSeen[i] + 1, Total - (int)lastSeen[i]).Select(s => (long)s);
            var got = second[i].SeqsSnapshot();

            Assert.True(expected.SequenceEqual(got), $"viewer {i} (lastSeq {lastSeen[i]}) got [{string.Join(",", got)}]");
        }

        var peak = await gateway.MetricAsync("process_resident_memory_bytes");
        await Task.WhenAll(second.Select(c => c.DisposeAsync().AsTask()));

        // 5. nothing left behind
        await Deadline.UntilAsync(async () => await gateway.MetricAsync("builder_engine_sessions") == 0 && await gateway.MetricAsync("builder_connected_sockets") == 0, Phase, "every session to end");
        var after = await gateway.MetricAsync("process_resident_memory_bytes");
        output.WriteLine($"RSS: {baseline / 1e6:0} MB before, {peak / 1e6:0} MB with {clients} viewers, {after / 1e6:0} MB after they left");
    }

    private static async Task PublishRoundAsync(GatewayProcess gateway, int projects, int events)
    {
        for (var e = 0; e < events; e++)
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, projects), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (p, _) =>
            {
                using var response = await gateway.PublishAsync($"storm-{p}", "agent:status:update", "{\"agentId\":\"ui-1\",\"agentType\":\"ui\",\"status\":\"working\",\"message\":\"round\"}");
                if (response.StatusCode != System.Net.HttpStatusCode.Accepted)
                {
                    throw new InvalidOperationException($"publish to storm-{p}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
            });
        }
    }

    private static async Task<BuilderRawClient[]> ConnectAllAsync(GatewayProcess gateway, string[] tokens, Func<int, object> join)
    {
        var clients = new BuilderRawClient[tokens.Length];
        await Parallel.ForEachAsync(Enumerable.Range(0, tokens.Length), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (i, _) =>
        {
            var client = await BuilderRawClient.ConnectAsync(gateway.Port, tokens[i]);
            clients[i] = client;
            var ack = await client.EmitWithAckAsync("join-project", join(i), TimeSpan.FromSeconds(60));
            if (!ack.TryGetProperty("ok", out var ok) || ok.ValueKind != JsonValueKind.True)
            {
                throw new InvalidOperationException($"join of viewer {i} refused: {ack}");
            }
        });
        return clients;
    }
}
