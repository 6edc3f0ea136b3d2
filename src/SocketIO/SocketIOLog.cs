using Microsoft.Extensions.Logging;

namespace SocketIO;

/// <summary>
/// The Socket.IO server's log messages (source-generated), event ids 2000-2099, category
/// <c>SocketIO.SocketIOServer</c>. The list with levels: docs/architecture.md, "Logging".
/// </summary>
internal static partial class SocketIOLog
{
    [LoggerMessage(EventId = 2000, EventName = "InvalidPacket", Level = LogLevel.Debug, Message = "Session {Sid}: invalid packet ({Error}), closing")]
    public static partial void InvalidPacket(ILogger logger, string sid, string? error);

    [LoggerMessage(EventId = 2001, EventName = "PacketInInvalidState", Level = LogLevel.Debug, Message = "Session {Sid}: packet {Type} in invalid state for {Nsp}, closing")]
    public static partial void PacketInInvalidState(ILogger logger, string sid, SocketIO.Parser.SocketPacketType type, string nsp);

    [LoggerMessage(EventId = 2002, EventName = "ConnectTimeout", Level = LogLevel.Debug, Message = "Session {Sid}: no namespace joined within the connect timeout, closing")]
    public static partial void ConnectTimeout(ILogger logger, string sid);

    [LoggerMessage(EventId = 2003, EventName = "MiddlewareRefused", Level = LogLevel.Debug, Message = "Middleware of {Nsp} refused a connection")]
    public static partial void MiddlewareRefused(ILogger logger, Exception exception, string nsp);

    [LoggerMessage(EventId = 2004, EventName = "RecoveryDeclined", Level = LogLevel.Information, Message = "Not recovering session {Pid}: {Count} missed packets exceed the send queue")]
    public static partial void RecoveryDeclined(ILogger logger, string pid, int count);

    [LoggerMessage(EventId = 2010, EventName = "HandlersBacklogged", Level = LogLevel.Warning, Message = "Socket {SocketId}: {Count} events wait for a running handler, disconnecting")]
    public static partial void HandlersBacklogged(ILogger logger, string socketId, int count);

    [LoggerMessage(EventId = 2020, EventName = "ConnectFailed", Level = LogLevel.Error, Message = "Session {Sid}: connecting to {Nsp} failed")]
    public static partial void ConnectFailed(ILogger logger, Exception exception, string sid, string nsp);

    [LoggerMessage(EventId = 2021, EventName = "ConnectionHandlerFailed", Level = LogLevel.Error, Message = "Connection handler of {Nsp} failed")]
    public static partial void ConnectionHandlerFailed(ILogger logger, Exception exception, string nsp);

    [LoggerMessage(EventId = 2022, EventName = "EventHandlerFailed", Level = LogLevel.Error, Message = "Socket {SocketId}: handler of {Event} failed")]
    public static partial void EventHandlerFailed(ILogger logger, Exception exception, string socketId, string @event);

    [LoggerMessage(EventId = 2023, EventName = "ConnectAbortedHandlerFailed", Level = LogLevel.Error, Message = "Socket {SocketId}: connect-aborted handler failed")]
    public static partial void ConnectAbortedHandlerFailed(ILogger logger, Exception exception, string socketId);

    [LoggerMessage(EventId = 2024, EventName = "DisconnectHandlerFailed", Level = LogLevel.Error, Message = "Socket {SocketId}: disconnect handler failed")]
    public static partial void DisconnectHandlerFailed(ILogger logger, Exception exception, string socketId);
}
