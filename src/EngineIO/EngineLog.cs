using Microsoft.Extensions.Logging;

namespace EngineIO;

/// <summary>
/// The Engine.IO server's log messages (source-generated), event ids 1000-1099, category
/// <c>EngineIO.EngineIOServer</c> (the idle-memory trimmer's: 1100-1199, category
/// <c>EngineIO.IdleMemoryTrimmer</c>). The list with levels: docs/architecture.md, "Logging".
/// </summary>
internal static partial class EngineLog
{
    [LoggerMessage(EventId = 1000, EventName = "RequestRefused", Level = LogLevel.Debug, Message = "{Method} {Path}{Query} refused: {Status} code {Code} \"{Reason}\"")]
    public static partial void RequestRefused(ILogger logger, string method, string path, string query, int status, int code, string reason);

    [LoggerMessage(EventId = 1001, EventName = "SessionOpened", Level = LogLevel.Debug, Message = "Session {Sid} opened over {Transport}")]
    public static partial void SessionOpened(ILogger logger, string sid, string transport);

    [LoggerMessage(EventId = 1002, EventName = "SessionUpgraded", Level = LogLevel.Debug, Message = "Session {Sid} upgraded to websocket")]
    public static partial void SessionUpgraded(ILogger logger, string sid);

    [LoggerMessage(EventId = 1003, EventName = "SessionClosed", Level = LogLevel.Debug, Message = "Session {Sid} closed: {Reason}")]
    public static partial void SessionClosed(ILogger logger, string sid, string reason);

    [LoggerMessage(EventId = 1004, EventName = "WebSocketAcceptedAndClosed", Level = LogLevel.Debug, Message = "{Path}{Query}: WebSocket accepted and closed (the session cannot upgrade, or the transport is not websocket)")]
    public static partial void WebSocketAcceptedAndClosed(ILogger logger, string path, string query);

    [LoggerMessage(EventId = 1005, EventName = "UpgradeOfClosedSession", Level = LogLevel.Debug, Message = "Session {Sid} closed during its upgrade: the upgraded WebSocket is closed")]
    public static partial void UpgradeOfClosedSession(ILogger logger, string sid);

    [LoggerMessage(EventId = 1010, EventName = "SendQueueFull", Level = LogLevel.Warning, Message = "Session {Sid}: send queue full ({Count} packets, {Bytes} bytes), closing slow consumer")]
    public static partial void SendQueueFull(ILogger logger, string sid, int count, long bytes);

    [LoggerMessage(EventId = 1011, EventName = "WriteTimedOut", Level = LogLevel.Warning, Message = "Session {Sid}: a write has been pending for over {Timeout}, closing slow consumer")]
    public static partial void WriteTimedOut(ILogger logger, string sid, TimeSpan timeout);

    [LoggerMessage(EventId = 1020, EventName = "CloseHandlerFailed", Level = LogLevel.Error, Message = "Session {Sid}: close handler failed")]
    public static partial void CloseHandlerFailed(ILogger logger, Exception exception, string sid);

    [LoggerMessage(EventId = 1021, EventName = "MessageHandlerFailed", Level = LogLevel.Error, Message = "Session {Sid}: message handler failed")]
    public static partial void MessageHandlerFailed(ILogger logger, Exception exception, string sid);

    [LoggerMessage(EventId = 1022, EventName = "WriteFailed", Level = LogLevel.Error, Message = "Session {Sid}: write failed")]
    public static partial void WriteFailed(ILogger logger, Exception exception, string sid);

    [LoggerMessage(EventId = 1023, EventName = "AllowRequestFailed", Level = LogLevel.Error, Message = "AllowRequest failed for a WebSocket handshake")]
    public static partial void AllowRequestFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1100, EventName = "IdleMemoryTrimmed", Level = LogLevel.Information, Message = "Idle memory trim: working set {Before} MB -> {After} MB, {Pause} ms pause")]
    public static partial void IdleMemoryTrimmed(ILogger logger, long before, long after, int pause);
}
