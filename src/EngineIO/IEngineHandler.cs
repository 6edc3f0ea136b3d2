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
    public const string TransportClose = "transport close";
    public const string TransportError = "transport error";
    public const string PingTimeout = "ping timeout";
    public const string ParseError = "parse error";
    public const string ForcedClose = "forced close";
    public const string ServerShuttingDown = "server shutting down";
}
