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
}
