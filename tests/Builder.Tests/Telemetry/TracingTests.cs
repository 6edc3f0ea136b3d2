using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using Builder.Telemetry;
using Builder.Tests.Infrastructure;
using Cluster.Tests;
using OpenTelemetry.Trace;

namespace Builder.Tests.Telemetry;

/// <summary>The publish span: a child of the producer's request, which carries the W3C trace context of the POST.</summary>
public sealed class TracingTests
{
    [Fact]
    public async Task A_traceparent_on_the_POST_is_the_parent_of_the_request_span_whose_child_is_the_publish_span()
    {
        var spans = new ConcurrentQueue<Activity>();
        var exported = new ExportedActivities(spans);
        await using var gateway = await TestGateway.StartAsync(
            s => s["Builder:Telemetry:Tracing"] = "true",
            services: c => c.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(exported)));

        var traceId = ActivityTraceId.CreateRandom();
        var callerSpan = ActivitySpanId.CreateRandom();
        using var response = await gateway.PublishRawAsync("traced", new { type = "build:progress", payload = new { currentPhase = "analyze", phaseProgress = 10, overallProgress = 5 } }, request =>
        {
            request.Headers.Add("X-Api-Key", TestGateway.ApiKey);
            request.Headers.Add("traceparent", $"00-{traceId}-{callerSpan}-01");
        });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);

        // spans are exported when they end: the request's after its response
        Activity? Find(Func<Activity, bool> match) => spans.FirstOrDefault(a => a.TraceId == traceId && match(a));
        await Deadline.UntilAsync(() => Find(a => a.Kind == ActivityKind.Server) is not null, TestGateway.Wait, "the request span");

        var server = Find(a => a.Kind == ActivityKind.Server)!;
        Assert.Equal(callerSpan, server.ParentSpanId);
        var publish = Find(a => a.OperationName == GatewayActivities.Publish);
        Assert.NotNull(publish);
        Assert.Equal(server.SpanId, publish.ParentSpanId);
        Assert.Equal("traced", publish.GetTagItem("builder.project_id"));
        Assert.Equal("build:progress", publish.GetTagItem("builder.event.type"));
        Assert.Equal(1L, publish.GetTagItem("builder.event.seq"));

        // the log append then the broadcast, both inside the publication
        var append = Find(a => a.OperationName == GatewayActivities.LogAppend);
        var broadcast = Find(a => a.OperationName == GatewayActivities.Broadcast);
        Assert.NotNull(append);
        Assert.NotNull(broadcast);
        Assert.Equal(publish.SpanId, append.ParentSpanId);
        Assert.Equal(publish.SpanId, broadcast.ParentSpanId);
        Assert.True(append.StartTimeUtc <= broadcast.StartTimeUtc);
    }

    [Fact]
    public async Task Without_a_traceparent_the_publish_span_starts_its_own_trace_under_the_request()
    {
        var spans = new ConcurrentQueue<Activity>();
        await using var gateway = await TestGateway.StartAsync(
            s => s["Builder:Telemetry:Tracing"] = "true",
            services: c => c.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(new ExportedActivities(spans))));

        using var response = await gateway.PublishRawAsync("untraced", new { type = "build:progress", payload = new { currentPhase = "analyze", phaseProgress = 10, overallProgress = 5 } });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        await Deadline.UntilAsync(() => spans.Any(a => a.Kind == ActivityKind.Server && a.GetTagItem("url.path") as string == "/api/projects/untraced/events"), TestGateway.Wait, "the request span");

        var server = spans.First(a => a.Kind == ActivityKind.Server && a.GetTagItem("url.path") as string == "/api/projects/untraced/events");
        Assert.Equal(default, server.ParentSpanId);
        var publish = spans.Single(a => a.OperationName == GatewayActivities.Publish && a.GetTagItem("builder.project_id") as string == "untraced");
        Assert.Equal(server.TraceId, publish.TraceId);
        Assert.Equal(server.SpanId, publish.ParentSpanId);
    }

    [Fact]
    public async Task A_publication_the_log_cannot_take_ends_its_span_in_error()
    {
        var spans = new ConcurrentQueue<Activity>();
        await using var gateway = await TestGateway.StartAsync(
            s => s["Builder:Telemetry:Tracing"] = "true",
            services: c =>
            {
                c.ConfigureOpenTelemetryTracerProvider(t => t.AddInMemoryExporter(new ExportedActivities(spans)));

                // the log of project "unlogged" is unreachable, as Redis when it is down
                Builder.Tests.Infrastructure.EventLogProxy.Decorate(c, (_, method, args) =>
                    method.Name == nameof(Builder.Events.IEventLog.AppendBatchAsync) && args is ["unlogged", ..]
                        ? throw new Builder.Events.StoreUnavailableException("the store is down (test)")
                        : null);
            });

        using var refused = await gateway.PublishRawAsync("unlogged", new { type = "build:progress", payload = new { currentPhase = "analyze", phaseProgress = 10, overallProgress = 5 } });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        using var accepted = await gateway.PublishRawAsync("logged", new { type = "build:progress", payload = new { currentPhase = "analyze", phaseProgress = 10, overallProgress = 5 } });
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);

        Activity? Publish(string projectId) => spans.FirstOrDefault(a => a.OperationName == GatewayActivities.Publish && a.GetTagItem("builder.project_id") as string == projectId);
        await Deadline.UntilAsync(() => Publish("unlogged") is not null && Publish("logged") is not null, TestGateway.Wait, "both publish spans");
        var failed = Publish("unlogged")!;
        Assert.Equal(ActivityStatusCode.Error, failed.Status);
        Assert.Equal("the store is down (test)", failed.StatusDescription);
        Assert.Equal(typeof(Builder.Events.StoreUnavailableException).FullName, failed.GetTagItem("exception.type"));
        Assert.Equal(ActivityStatusCode.Unset, Publish("logged")!.Status);
    }

    /// <summary>The in-memory exporter's collection: a thread-safe queue (spans end on several threads).</summary>
    private sealed class ExportedActivities(ConcurrentQueue<Activity> spans) : ICollection<Activity>
    {
        public int Count => spans.Count;

        public bool IsReadOnly => false;

        public void Add(Activity item) => spans.Enqueue(item);

        public void Clear() => spans.Clear();

        public bool Contains(Activity item) => spans.Contains(item);

        public void CopyTo(Activity[] array, int arrayIndex) => spans.CopyTo(array, arrayIndex);

        public bool Remove(Activity item) => throw new NotSupportedException();

        public IEnumerator<Activity> GetEnumerator() => spans.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
