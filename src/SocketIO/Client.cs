using System.Text.Json;
using EngineIO;
using Microsoft.Extensions.Logging;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>One Engine.IO connection and the namespace sockets multiplexed over it.</summary>
internal sealed class Client
{
    private static readonly JsonElement s_emptyAuth = JsonDocument.Parse("{}").RootElement.Clone();
    private readonly Dictionary<string, Socket> _sockets = new(StringComparer.Ordinal);
    private HashSet<string>? _connecting; // namespaces with a connect under way (none most of a connection's life)
    private readonly IPacketDecoder _decoder;
    private readonly ITimer _connectTimeout;

    public Client(SocketIOServer server, EngineSession session)
    {
        Server = server;
        Session = session;
        _decoder = server.Parser.CreateDecoder();
        _connectTimeout = server.Options.Engine.TimeProvider.CreateDetachedTimer(
            static s => ((Client)s!).OnConnectTimeout(), this, server.Options.ConnectTimeout, Timeout.InfiniteTimeSpan);
    }

    public SocketIOServer Server { get; }

    public EngineSession Session { get; }

    public void Send(EncodedPacket packet)
    {
        var messages = packet.Messages;
        if (!Session.Send(messages[0]))
        {
            return;
        }

        for (var i = 1; i < messages.Length; i++)
        {
            Session.Send(messages[i]);
        }
    }

    /// <summary>Closes the whole connection once queued packets are flushed.</summary>
    public void Close() => Session.Close();

    /// <summary>Disconnects every namespace socket (each client sees "io server disconnect"), then closes.</summary>
    public void DisconnectAll()
    {
        Socket[] sockets;
        lock (_sockets)
        {
            sockets = [.. _sockets.Values];
        }

        foreach (var socket in sockets)
        {
            socket.Disconnect();
        }

        Close();
    }

    public void Remove(Socket socket)
    {
        lock (_sockets)
        {
            if (_sockets.TryGetValue(socket.Namespace.Name, out var current) && ReferenceEquals(current, socket))
            {
                _sockets.Remove(socket.Namespace.Name);
            }
        }
    }

    public void OnMessage(EngineMessage message)
    {
        var status = _decoder.Decode(message, out var packet, out var error);
        if (status == DecodeStatus.NeedMore)
        {
            return;
        }

        if (status == DecodeStatus.Error || packet is null)
        {
            Server.Log.LogDebug("Session {Sid}: invalid packet ({Error}), closing", Session.Id, error);
            Session.Abort(EngineCloseReason.ParseError);
            return;
        }

        Socket? socket;
        lock (_sockets)
        {
            _sockets.TryGetValue(packet.Namespace, out socket);
        }

        if (socket is null && packet.Type == SocketPacketType.Connect)
        {
            lock (_sockets)
            {
                if (!(_connecting ??= new(StringComparer.Ordinal)).Add(packet.Namespace))
                {
                    return;
                }
            }

            _ = ConnectAsync(packet.Namespace, packet.Data ?? s_emptyAuth);
        }
        else if (socket is not null && packet.Type is not (SocketPacketType.Connect or SocketPacketType.ConnectError))
        {
            socket.OnPacket(packet);
        }
        else
        {
            Server.Log.LogDebug("Session {Sid}: packet {Type} in invalid state for {Nsp}, closing", Session.Id, packet.Type, packet.Namespace);
            Close();
        }
    }

    private async Task ConnectAsync(string name, JsonElement auth)
    {
        try
        {
            var nsp = Server.ResolveNamespace(name, auth);
            if (nsp is null)
            {
                Send(Server.Parser.Encode(SocketPacketType.ConnectError, name, null, new Dictionary<string, string> { ["message"] = "Invalid namespace" }));
                return;
            }

            var socket = await nsp.AddAsync(this, auth);
            if (socket is not null)
            {
                lock (_sockets)
                {
                    _sockets[name] = socket;
                }

                // a namespace is joined: the connect timeout has done its job
                _connectTimeout.Dispose();
                nsp.CompleteConnect(socket);
            }
        }
#pragma warning disable CA1031 // a failing namespace must not take the connection's loop down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Server.Log.LogError(ex, "Session {Sid}: connecting to {Nsp} failed", Session.Id, name);
            Send(Server.Parser.Encode(SocketPacketType.ConnectError, name, null, new Dictionary<string, string> { ["message"] = "Internal server error" }));
        }
        finally
        {
            lock (_sockets)
            {
                if (_connecting is { } connecting && connecting.Remove(name) && connecting.Count == 0)
                {
                    _connecting = null;
                }
            }
        }
    }

    private void OnConnectTimeout()
    {
        bool none;
        lock (_sockets)
        {
            none = _sockets.Count == 0;
        }

        if (none && Session.IsOpen)
        {
            Server.Log.LogDebug("Session {Sid}: no namespace joined within the connect timeout, closing", Session.Id);
            Close();
        }
    }

    public void OnClose(string reason)
    {
        _connectTimeout.Dispose();
        Socket[] sockets;
        lock (_sockets)
        {
            sockets = [.. _sockets.Values];
            _sockets.Clear();
        }

        foreach (var socket in sockets)
        {
            socket.OnClose(reason);
        }
    }
}
