using System.Diagnostics;

namespace Builder.Telemetry;

/// <summary>
/// The gateway's traces: the <see cref="ActivitySource"/> <c>Builder.Gateway</c>. A publication
/// is the span <c>builder.publish</c> (a child of the producer's HTTP request span, itself the
/// child of the request's W3C <c>traceparent</c>) with the children <c>builder.log.append</c>
/// and <c>builder.broadcast</c>.
/// </summary>
public static class GatewayActivities
{
    /// <summary>The activity source's name (what an OpenTelemetry tracer provider subscribes to).</summary>
    public const string SourceName = "Builder.Gateway";

    /// <summary>The span of a publication: log append then broadcast.</summary>
    public const string Publish = "builder.publish";

    /// <summary>The span of the append to the project's log.</summary>
    public const string LogAppend = "builder.log.append";

    /// <summary>The span of the hand-over to the project's room.</summary>
    public const string Broadcast = "builder.broadcast";

    public static ActivitySource Source { get; } = new(SourceName);
}
