using EngineIO;

namespace SocketIO;

/// <summary>Socket.IO disconnect reasons, as the reference server reports them.</summary>
public static class DisconnectReason
{
    /// <summary>The server disconnected the socket.</summary>
    public const string ServerNamespaceDisconnect = "server namespace disconnect";
    /// <summary>The client left the namespace.</summary>
    public const string ClientNamespaceDisconnect = "client namespace disconnect";
    /// <summary>The client closed the connection.</summary>
    public const string TransportClose = EngineCloseReason.TransportClose;
    /// <summary>The connection failed.</summary>
    public const string TransportError = EngineCloseReason.TransportError;
    /// <summary>The client did not answer the ping in time.</summary>
    public const string PingTimeout = EngineCloseReason.PingTimeout;
    /// <summary>The client sent a packet that cannot be decoded.</summary>
    public const string ParseError = EngineCloseReason.ParseError;
    /// <summary>The server closed the connection.</summary>
    public const string ForcedClose = EngineCloseReason.ForcedClose;
    /// <summary>The server is stopping.</summary>
    public const string ServerShuttingDown = EngineCloseReason.ServerShuttingDown;

    internal static bool IsRecoverable(string reason) =>
        TryParse(reason, out var kind) && kind is DisconnectReasonKind.TransportClose or DisconnectReasonKind.TransportError
            or DisconnectReasonKind.PingTimeout or DisconnectReasonKind.ForcedClose or DisconnectReasonKind.ServerShuttingDown;

    // the reference strings in the order of DisconnectReasonKind's values
    private static readonly string[] s_wire = [ServerNamespaceDisconnect, ClientNamespaceDisconnect, TransportClose, TransportError, PingTimeout, ParseError, ForcedClose, ServerShuttingDown];

    /// <summary>The reference server's string for <paramref name="reason"/> (what the disconnect handlers receive).</summary>
    public static string ToWireString(this DisconnectReasonKind reason) =>
        (uint)reason < (uint)s_wire.Length ? s_wire[(int)reason] : throw new ArgumentOutOfRangeException(nameof(reason), reason, "Not a Socket.IO disconnect reason.");

    /// <summary>The disconnect reason whose reference string is <paramref name="reason"/>; false for any other string.</summary>
    public static bool TryParse(string? reason, out DisconnectReasonKind kind)
    {
        var index = Array.IndexOf(s_wire, reason);
        kind = index >= 0 ? (DisconnectReasonKind)index : default;
        return index >= 0;
    }
}

/// <summary>
/// Socket.IO disconnect reasons as values; <see cref="DisconnectReason.ToWireString"/> gives the
/// reference server's string, which is what the disconnect handlers receive.
/// </summary>
public enum DisconnectReasonKind
{
    /// <summary>"server namespace disconnect": the server disconnected the socket.</summary>
    ServerNamespaceDisconnect,
    /// <summary>"client namespace disconnect": the client left the namespace.</summary>
    ClientNamespaceDisconnect,
    /// <summary>"transport close": the client closed the connection.</summary>
    TransportClose,
    /// <summary>"transport error": the connection failed.</summary>
    TransportError,
    /// <summary>"ping timeout": the client did not answer the ping in time.</summary>
    PingTimeout,
    /// <summary>"parse error": the client sent a packet that cannot be decoded.</summary>
    ParseError,
    /// <summary>"forced close": the server closed the connection.</summary>
    ForcedClose,
    /// <summary>"server shutting down": the server is stopping.</summary>
    ServerShuttingDown,
}
