using Builder.Hub;
using Builder.Telemetry;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Builder.Gateway;

/// <summary>
/// OpenTelemetry for the gateway: the meters <c>Builder.Gateway</c>, <c>SocketIO.Redis</c> and
/// <c>EngineIO</c> served as Prometheus text at <c>/metrics</c>; the activity source
/// <c>Builder.Gateway</c> and ASP.NET Core's request spans (W3C <c>traceparent</c> honoured);
/// OTLP export of both when <c>Builder:Telemetry:OtlpEndpoint</c> or the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set.
/// </summary>
internal static class GatewayTelemetry
{
    public const string ServiceName = "builder-gateway";

    public static void Add(WebApplicationBuilder builder, TelemetryOptions options)
    {
        var otlpEndpoint = options.OtlpEndpoint is { Length: > 0 } configured ? configured : builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        var otlp = !string.IsNullOrWhiteSpace(otlpEndpoint);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(ServiceName))
            .WithMetrics(metrics => metrics
                .AddMeter(GatewayMetrics.MeterName, "SocketIO.Redis", "EngineIO")
                // every scrape reads the instruments afresh (tests and dashboards poll it)
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        if (otlp || options.Tracing)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(GatewayActivities.SourceName)
                .AddAspNetCoreInstrumentation(o => o.Filter = context => IsTraced(context.Request.Path)));
        }

        if (otlp)
        {
            if (options.OtlpEndpoint is { Length: > 0 })
            {
                var protocol = options.OtlpProtocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc;
                telemetry.UseOtlpExporter(protocol, new Uri(options.OtlpEndpoint));
            }
            else
            {
                // OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, ... as the exporter reads them
                telemetry.UseOtlpExporter();
            }
        }
    }

    /// <summary>Requests worth a span: the API and the previews, not the scrapes, probes and Socket.IO transport requests.</summary>
    private static bool IsTraced(PathString path) =>
        !(path.StartsWithSegments("/metrics", StringComparison.Ordinal)
          || path.StartsWithSegments("/healthz", StringComparison.Ordinal)
          || path.StartsWithSegments("/readyz", StringComparison.Ordinal)
          || path.StartsWithSegments("/socket.io", StringComparison.Ordinal));
}
