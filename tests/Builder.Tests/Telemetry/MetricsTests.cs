using Builder.Tests.Infrastructure;
using Builder.Tests.Runner;
using Cluster.Tests;

namespace Builder.Tests.Telemetry;

/// <summary>/metrics (the OpenTelemetry Prometheus exporter) after a simulated build shows what happened.</summary>
public sealed class MetricsTests
{
    [Fact]
    public async Task After_a_simulated_build_metrics_show_the_build_its_events_decision_and_viewer()
    {
        await using var gateway = await TestGateway.StartAsync();
        const string project = "metrics-shop";
        await using var client = gateway.Client(gateway.Token("viewer", [project]));
        await client.ConnectAsync();
        await client.JoinAsync(project);

        await BuildApi.StartAsync(gateway, project);
        var events = await EventStream.RunToEndAsync(client, "option-1");
        Assert.Equal("build:completed", events[^1].Name);
        var byType = events.GroupBy(e => e.Name).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

        // the build's end is counted once its publication returned: wait for it, then read once
        Dictionary<string, double> metrics = [];
        await Deadline.UntilAsync(
            async () =>
            {
                metrics = PrometheusText.Parse(await gateway.Http.GetStringAsync("metrics"));
                return metrics.GetValueOrDefault("builder_builds_total{result=\"completed\"}") >= 1 && metrics.GetValueOrDefault("builder_running_builds", -1) == 0;
            },
            TestGateway.Wait,
            "the completed build on /metrics");

        Assert.Equal(1, metrics["builder_builds_total{result=\"completed\"}"]);
        Assert.DoesNotContain(metrics.Keys, k => k.StartsWith("builder_builds_total{result=\"failed\"", StringComparison.Ordinal));
        foreach (var (type, count) in byType)
        {
            Assert.True(metrics.GetValueOrDefault($"builder_events_published_total{{type=\"{type}\"}}") == count, $"published {type}: {count} expected\n{Describe(metrics)}");
            Assert.True(metrics.GetValueOrDefault($"builder_events_delivered_total{{type=\"{type}\"}}") == count, $"delivered {type}: {count} expected\n{Describe(metrics)}");
            Assert.Equal(count, metrics[$"builder_events_delivery_latency_seconds_count{{type=\"{type}\"}}"]);
        }

        // no event the viewer did not see was counted
        Assert.Equal(events.Count, metrics.Where(p => p.Key.StartsWith("builder_events_published_total{", StringComparison.Ordinal)).Sum(p => p.Value));
        Assert.True(byType["agent:status:update"] >= 8, "the simulated team reports each agent's progress");

        // one decision asked and answered by the user; one viewer connected and joined (a snapshot, no lastSeq)
        Assert.Equal(1, metrics["builder_decisions_asked_total"]);
        Assert.Equal(1, metrics["builder_decisions_resolved_total{outcome=\"user\"}"]);
        Assert.Equal(1, metrics["builder_connections_total"]);
        Assert.Equal(1, metrics["builder_joins_total{catch_up=\"snapshot\"}"]);
        Assert.Equal(1, metrics["builder_connected_sockets"]);
        Assert.True(metrics["process_resident_memory_bytes"] > 0);
    }

    private static string Describe(Dictionary<string, double> metrics) =>
        string.Join('\n', metrics.Where(p => p.Key.StartsWith("builder_", StringComparison.Ordinal) && !p.Key.Contains("_bucket", StringComparison.Ordinal)).Select(p => $"{p.Key} {p.Value}"));
}
