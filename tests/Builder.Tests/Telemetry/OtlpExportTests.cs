using System.Collections.Concurrent;
using System.Net;
using Builder.Tests.Infrastructure;
using Cluster.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Builder.Tests.Telemetry;

/// <summary>Builder:Telemetry:OtlpEndpoint: the gateway exports its metrics and traces over OTLP (http/protobuf to a collector on loopback).</summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task With_an_otlp_endpoint_metrics_and_traces_reach_the_collector()
    {
        await using var collector = await Collector.StartAsync();
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Telemetry:OtlpEndpoint"] = collector.Url;
            s["Builder:Telemetry:OtlpProtocol"] = "http/protobuf";
            // the SDK's standard settings, read from the configuration: export soon
            s["OTEL_METRIC_EXPORT_INTERVAL"] = "200";
            s["OTEL_BSP_SCHEDULE_DELAY"] = "100";
        });

        var published = await gateway.PublishAsync("otlp", "build:progress", new { currentPhase = "analyze", phaseProgress = 10, overallProgress = 5 });
        Assert.Equal(1, published.GetProperty("seq").GetInt64());

        await Deadline.UntilAsync(() => collector.Received("/v1/metrics") > 0 && collector.Received("/v1/traces") > 0, TimeSpan.FromSeconds(30), "OTLP metrics and traces at the collector");
        Assert.All(collector.ContentTypes, t => Assert.Equal("application/x-protobuf", t));
    }

    /// <summary>An OTLP/HTTP endpoint that counts the export requests by path (and answers 200, an empty response).</summary>
    private sealed class Collector : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentDictionary<string, int> _paths = new(StringComparer.Ordinal);

        private Collector(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";

        public ConcurrentBag<string> ContentTypes { get; } = [];

        public int Received(string path) => _paths.GetValueOrDefault(path);

        public static async Task<Collector> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var collector = new Collector(app);
            app.MapPost("/v1/{signal}", async (HttpContext context, string signal) =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                if (body.Length > 0)
                {
                    collector.ContentTypes.Add(context.Request.ContentType ?? "");
                    collector._paths.AddOrUpdate("/v1/" + signal, 1, (_, n) => n + 1);
                }

                context.Response.StatusCode = (int)HttpStatusCode.OK;
            });
            await app.StartAsync();
            collector.Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return collector;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
