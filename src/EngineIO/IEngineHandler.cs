namespace EngineIO;

/// <summary>The layer above Engine.IO (Socket.IO, or a raw Engine.IO application).</summary>
public interface IEngineHandler
{
    /// <summary>A session was opened (the handshake has been sent).</summary>
    void OnOpen(EngineSession session);

    /// <summary>A message packet arrived. Called sequentially per session, in order.</summary>
    void OnMessage(EngineSession session, EngineMessage message);

    /// <summary>The session closed; reason is one of the Engine.IO close reasons.</summary>
    void OnClose(EngineSession session, string reason);
}

/// <summary>Engine.IO close reasons, as the reference server reports them.</summary>
public static class EngineCloseReason
{
    /// <summary>The client closed the connection.</summary>
    public const string TransportClose = "transport close";
    /// <summary>The transport failed (or a slow consumer overflowed its buffer).</summary>
    public const string TransportError = "transport error";
    /// <summary>No pong arrived within the ping timeout.</summary>
    public const string PingTimeout = "ping timeout";
    /// <summary>The client sent a packet that cannot be decoded.</summary>
    public const string ParseError = "parse error";
    /// <summary>The server closed the session.</summary>
    public const string ForcedClose = "forced close";
    /// <summary>The server is stopping.</summary>
    public const string ServerShuttingDown = "server shutting down";

    // the reference strings in the order of EngineCloseReasonKind's values
    private static readonly string[] s_wire = [TransportClose, TransportError, PingTimeout, ParseError, ForcedClose, ServerShuttingDown];

    /// <summary>The reference server's string for <paramref name="reason"/> (what <see cref="IEngineHandler.OnClose"/> receives).</summary>
    public static string ToWireString(this EngineCloseReasonKind reason) =>
        (uint)reason < (uint)s_wire.Length ? s_wire[(int)reason] : throw new ArgumentOutOfRangeException(nameof(reason), reason, "Not an Engine.IO close reason.");

    /// <summary>The close reason whose reference string is <paramref name="reason"/>; false for any other string.</summary>
    public static bool TryParse(string? reason, out EngineCloseReasonKind kind)
    {
        var index = Array.IndexOf(s_wire, reason);
        kind = index >= 0 ? (EngineCloseReasonKind)index : default;
        return index >= 0;
    }
}

/// <summary>
/// Engine.IO close reasons as values; <see cref="EngineCloseReason.ToWireString"/> gives the
/// reference server's string, which is what travels and what <see cref="IEngineHandler.OnClose"/> receives.
/// </summary>
public enum EngineCloseReasonKind
{
    /// <summary>"transport close": the client closed the connection.</summary>
    TransportClose,
    /// <summary>"transport error": the transport failed (or a slow consumer overflowed its buffer).</summary>
    TransportError,
    /// <summary>"ping timeout": no pong arrived within the ping timeout.</summary>
    PingTimeout,
    /// <summary>"parse error": the client sent a packet that cannot be decoded.</summary>
    ParseError,
    /// <summary>"forced close": the server closed the session.</summary>
    ForcedClose,
    /// <summary>"server shutting down": the server is stopping.</summary>
    ServerShuttingDown,
}
