using System.Text.Json.Serialization;

namespace Builder.Hub;

/// <summary>Error codes the gateway sends in the document's <c>error</c> event.</summary>
public static class ErrorCodes
{
    public const string UnknownEvent = "UNKNOWN_EVENT";
    public const string InvalidPayload = "INVALID_PAYLOAD";
    public const string Forbidden = "FORBIDDEN";
    public const string PayloadTooLarge = "PAYLOAD_TOO_LARGE";
    public const string RateLimited = "RATE_LIMITED";
    public const string ConnectionLimit = "CONNECTION_LIMIT";
    public const string HeartbeatTimeout = "HEARTBEAT_TIMEOUT";
    public const string Internal = "INTERNAL_ERROR";
    public const string Unavailable = "STORE_UNAVAILABLE";
}

public sealed record ErrorAction(
    [property: JsonPropertyName("label")] string Label,
    [property: JsonPropertyName("action")] string Action);

/// <summary>The payload of the document's <c>error</c> event.</summary>
public sealed record ErrorPayload(
    [property: JsonPropertyName("code")] string Code,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("details")] object Details,
    [property: JsonPropertyName("recoverable")] bool Recoverable,
    [property: JsonPropertyName("actions")] IReadOnlyList<ErrorAction> Actions);

/// <summary>The document's error envelope <c>{type: "error", timestamp, payload}</c>.</summary>
public sealed record ErrorEnvelope(
    [property: JsonPropertyName("type")] string Type,
    [property: JsonPropertyName("timestamp")] long Timestamp,
    [property: JsonPropertyName("payload")] ErrorPayload Payload);
