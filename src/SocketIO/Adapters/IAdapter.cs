using System.Text.Json;
using SocketIO.Parser;

namespace SocketIO.Adapters;

/// <summary>Where a broadcast goes: sockets in any of <see cref="Rooms"/> (all when empty), none in <see cref="Except"/>.</summary>
public sealed record BroadcastOptions
{
    // declared before All: static fields initialize in order
    internal static readonly IReadOnlySet<string> EmptySet = new HashSet<string>();

    /// <summary>Every socket of the namespace.</summary>
    public static readonly BroadcastOptions All = new();

    /// <summary>Rooms whose sockets receive the broadcast; empty for all sockets.</summary>
    public IReadOnlySet<string> Rooms { get; init; } = EmptySet;

    /// <summary>Rooms whose sockets are left out.</summary>
    public IReadOnlySet<string> Except { get; init; } = EmptySet;

    /// <summary>May be dropped when a client is not ready (never stored for recovery).</summary>
    public bool Volatile { get; init; }

    /// <summary>Only this node's sockets (no cluster fan-out).</summary>
    public bool Local { get; init; }

    /// <summary>For broadcasts expecting acknowledgements.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Whether a socket in <paramref name="socketRooms"/> is a recipient.</summary>
    public bool Includes(IReadOnlySet<string> socketRooms) => Includes(Rooms, Except, socketRooms);

    /// <summary>Whether a socket in <paramref name="socketRooms"/> gets a broadcast to <paramref name="rooms"/> (all when empty) except <paramref name="except"/>.</summary>
    internal static bool Includes(IReadOnlyCollection<string> rooms, IReadOnlyCollection<string> except, IReadOnlySet<string> socketRooms)
    {
        foreach (var room in except)
        {
            if (socketRooms.Contains(room))
            {
                return false;
            }
        }

        if (rooms.Count == 0)
        {
            return true;
        }

        foreach (var room in rooms)
        {
            if (socketRooms.Contains(room))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>An event to broadcast: its name and arguments (any serializable values, byte[] as binary).</summary>
public sealed record BroadcastMessage(string EventName, object?[] Args);

/// <summary>A socket's state kept while it is disconnected, for connection state recovery.</summary>
public sealed record PersistedSession(string SocketId, string Pid, IReadOnlyList<string> Rooms, IReadOnlyDictionary<string, object?> Data);

/// <summary>
/// A restored session with the events it missed, in order: as argument arrays ending with their
/// offset (<see cref="MissedPackets"/>, encoded when sent), or already encoded
/// (<see cref="EncodedMissedPackets"/>, sent as they are; the in-memory adapter's form). An adapter
/// fills one of the two; if both, the argument arrays are sent first.
/// </summary>
public sealed record RestoredSession(PersistedSession Session, IReadOnlyList<object?[]> MissedPackets)
{
    /// <summary>The missed events already encoded, in order (empty unless the adapter kept them so).</summary>
    public IReadOnlyList<EncodedPacket> EncodedMissedPackets { get; init; } = [];

    /// <summary>How many events the session missed.</summary>
    public int MissedCount => MissedPackets.Count + EncodedMissedPackets.Count;
}

/// <summary>
/// Room membership and fan-out for one namespace. The in-memory adapter serves one node; a
/// cluster adapter (Redis) extends it to forward broadcasts and requests to other nodes.
/// </summary>
public interface IAdapter : IDisposable
{
    /// <summary>Adds a socket to rooms.</summary>
    void AddAll(string socketId, IEnumerable<string> rooms);

    /// <summary>Removes a socket from a room.</summary>
    void Del(string socketId, string room);

    /// <summary>Removes a socket from all its rooms.</summary>
    void DelAll(string socketId);

    /// <summary>The rooms of a local socket (empty when unknown).</summary>
    IReadOnlySet<string> SocketRooms(string socketId);

    /// <summary>Rooms that have at least one local socket.</summary>
    IReadOnlyCollection<string> Rooms { get; }

    /// <summary>Local socket ids in any of the given rooms (all sockets when empty).</summary>
    IReadOnlySet<string> Sockets(IReadOnlySet<string> rooms);

    /// <summary>Sends an event to every matching socket; the packet is encoded once.</summary>
    void Broadcast(BroadcastMessage message, BroadcastOptions options);

    /// <summary>Sends an event expecting an ack from each recipient; completes when all answered or the timeout elapsed.</summary>
    Task<BroadcastAckResult> BroadcastWithAckAsync(BroadcastMessage message, BroadcastOptions options, CancellationToken cancellationToken);

    /// <summary>The sockets <paramref name="options"/> select, on every node.</summary>
    Task<IReadOnlyList<RemoteSocket>> FetchSocketsAsync(BroadcastOptions options, CancellationToken cancellationToken);

    /// <summary>Makes the sockets <paramref name="options"/> select join <paramref name="rooms"/>.</summary>
    void AddSockets(BroadcastOptions options, IReadOnlyList<string> rooms);

    /// <summary>Makes the sockets <paramref name="options"/> select leave <paramref name="rooms"/>.</summary>
    void DelSockets(BroadcastOptions options, IReadOnlyList<string> rooms);

    /// <summary>Disconnects the sockets <paramref name="options"/> select.</summary>
    void DisconnectSockets(BroadcastOptions options, bool close);

    /// <summary>Keeps a disconnected socket's session for connection state recovery.</summary>
    ValueTask PersistSessionAsync(PersistedSession session);

    /// <summary>Gets back a disconnected session by its private id, with the packets sent after <paramref name="offset"/>; null when it is gone.</summary>
    ValueTask<RestoredSession?> RestoreSessionAsync(string pid, string offset);
}

/// <summary>Acknowledgements gathered from a broadcast; <see cref="TimedOut"/> when some recipients did not answer in time.</summary>
public sealed record BroadcastAckResult(IReadOnlyList<AckResponse> Responses, int Expected, bool TimedOut);

/// <summary>A socket as seen through the adapter (local or on another node).</summary>
public class RemoteSocket
{
    private readonly SocketIOSocket? _local;

    /// <summary>A socket of another node, as a cluster adapter reports it.</summary>
    public RemoteSocket(string id, IReadOnlySet<string> rooms, IReadOnlyDictionary<string, object?> data, JsonElement auth)
    {
        Id = id;
        Rooms = rooms;
        Data = data;
        Auth = auth;
    }

    internal RemoteSocket(SocketIOSocket local)
        : this(local.Id, new HashSet<string>(local.Rooms), local.DataCopy(), local.Handshake.Auth)
    {
        _local = local;
    }

    /// <summary>The socket's id.</summary>
    public string Id { get; }

    /// <summary>The rooms the socket is in.</summary>
    public IReadOnlySet<string> Rooms { get; }

    /// <summary>The socket's application data.</summary>
    public IReadOnlyDictionary<string, object?> Data { get; }

    /// <summary>The auth payload of the socket's handshake.</summary>
    public JsonElement Auth { get; }

    /// <summary>Sends an event to this socket (local sockets only in this base class).</summary>
    public virtual void Emit(string eventName, params object?[] args) => _local?.Emit(eventName, args);

    /// <summary>Makes the socket join rooms (local sockets only in this base class).</summary>
    public virtual void Join(params string[] rooms) => _local?.Join(rooms);

    /// <summary>Makes the socket leave a room (local sockets only in this base class).</summary>
    public virtual void Leave(string room) => _local?.Leave(room);

    /// <summary>Disconnects the socket, closing its connection when <paramref name="close"/> (local sockets only in this base class).</summary>
    public virtual void Disconnect(bool close = false) => _local?.Disconnect(close);
}
