using System.Text.Json;
using EngineIO;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>One Engine.IO connection and the namespace sockets multiplexed over it.</summary>
internal sealed class Client
{
    private static readonly JsonElement s_emptyAuth = JsonDocument.Parse("{}").RootElement.Clone();
    // the namespace sockets, under lock (this) (the class is internal: no one else locks it, and
    // a connection saves a lock object): nearly every connection joins one namespace, kept in
    // two fields; a dictionary (then holding them all) exists from the second namespace on
    private string? _firstName;
    private SocketIOSocket? _first;
    private Dictionary<string, SocketIOSocket>? _sockets;
    private HashSet<string>? _connecting; // namespaces with a connect under way (none most of a connection's life)
    private readonly IPacketDecoder _decoder;
    private ITimer? _connectTimeout; // dropped once disposed (a namespace joined, or the connection closed)

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
        foreach (var socket in SocketsCopy())
        {
            socket.Disconnect();
        }

        Close();
    }

    public void Remove(SocketIOSocket socket)
    {
        var name = socket.Namespace.Name;
        lock (this)
        {
            if (_sockets is not null)
            {
                if (_sockets.TryGetValue(name, out var current) && ReferenceEquals(current, socket))
                {
                    _sockets.Remove(name);
                }
            }
            else if (ReferenceEquals(_first, socket) && string.Equals(_firstName, name, StringComparison.Ordinal))
            {
                _firstName = null;
                _first = null;
            }
        }
    }

    /// <summary>The socket of a namespace; call under the lock.</summary>
    private SocketIOSocket? Find(string name)
    {
        if (_sockets is not null)
        {
            return _sockets.TryGetValue(name, out var socket) ? socket : null;
        }

        return string.Equals(_firstName, name, StringComparison.Ordinal) ? _first : null;
    }

    /// <summary>Sets (or replaces) the socket of a namespace; call under the lock.</summary>
    private void Set(string name, SocketIOSocket socket)
    {
        if (_sockets is not null)
        {
            _sockets[name] = socket;
        }
        else if (_first is null || string.Equals(_firstName, name, StringComparison.Ordinal))
        {
            _firstName = name;
            _first = socket;
        }
        else
        {
            _sockets = new(StringComparer.Ordinal) { [_firstName!] = _first, [name] = socket };
            _firstName = null;
            _first = null;
        }
    }

    private SocketIOSocket[] SocketsCopy(bool clear = false)
    {
        lock (this)
        {
            SocketIOSocket[] sockets = _sockets is not null ? [.. _sockets.Values] : _first is not null ? [_first] : [];
            if (clear)
            {
                _sockets = null;
                _firstName = null;
                _first = null;
            }

            return sockets;
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
            SocketIOLog.InvalidPacket(Server.Log, Session.Id, error);
            Session.Abort(EngineCloseReasonKind.ParseError);
            return;
        }

        SocketIOSocket? socket;
        lock (this)
        {
            socket = Find(packet.Namespace);
        }

        if (socket is null && packet.Type == SocketPacketType.Connect)
        {
            lock (this)
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
            SocketIOLog.PacketInInvalidState(Server.Log, Session.Id, packet.Type, packet.Namespace);
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
                Send(Server.Parser.Encode(SocketPacketType.ConnectError, Echoed(name), null, new Dictionary<string, string> { ["message"] = "Invalid namespace" }));
                return;
            }

            var socket = await nsp.AddAsync(this, auth);
            if (socket is not null)
            {
                lock (this)
                {
                    Set(name, socket);
                }

                // a namespace is joined: the connect timeout has done its job, the handshake is over
                if (Interlocked.Exchange(ref _connectTimeout, null) is { } timeout)
                {
                    timeout.Dispose();
                    Server.Engine.MarkEstablished(Session);
                }
                nsp.CompleteConnect(socket);
            }
        }
#pragma warning disable CA1031 // a failing namespace must not take the connection's loop down
        catch (Exception ex)
#pragma warning restore CA1031
        {
            SocketIOLog.ConnectFailed(Server.Log, ex, Session.Id, Echoed(name));
            Send(Server.Parser.Encode(SocketPacketType.ConnectError, Echoed(name), null, new Dictionary<string, string> { ["message"] = "Internal server error" }));
        }
        finally
        {
            lock (this)
            {
                if (_connecting is { } connecting && connecting.Remove(name) && connecting.Count == 0)
                {
                    _connecting = null;
                }
            }
        }
    }

    /// <summary>
    /// A namespace name the client sent, as echoed in a CONNECT_ERROR: whole (the client routes the
    /// error by it) up to <see cref="MaxEchoedNamespaceLength"/> characters, cut with an ellipsis
    /// beyond, so that replies to names as long as MaxPayload do not pile up in the send queue.
    /// </summary>
    internal static string Echoed(string name)
    {
        if (name.Length <= MaxEchoedNamespaceLength)
        {
            return name;
        }

        var cut = char.IsHighSurrogate(name[MaxEchoedNamespaceLength - 1]) ? MaxEchoedNamespaceLength - 1 : MaxEchoedNamespaceLength;
        return string.Concat(name.AsSpan(0, cut), "…");
    }

    /// <summary>The longest namespace name a CONNECT_ERROR echoes whole.</summary>
    internal const int MaxEchoedNamespaceLength = 128;

    private void OnConnectTimeout()
    {
        bool none;
        lock (this)
        {
            none = _sockets is null ? _first is null : _sockets.Count == 0;
        }

        if (none && Session.IsOpen)
        {
            SocketIOLog.ConnectTimeout(Server.Log, Session.Id);
            Close();
        }
    }

    public void OnClose(string reason)
    {
        Interlocked.Exchange(ref _connectTimeout, null)?.Dispose();
        foreach (var socket in SocketsCopy(clear: true))
        {
            socket.OnClose(reason);
        }
    }
}
