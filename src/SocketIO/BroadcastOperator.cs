using SocketIO.Adapters;

namespace SocketIO;

/// <summary>
/// An immutable selection of recipients and flags: <c>To</c>/<c>In</c> add rooms (a socket in
/// several of them gets the event once), <c>Except</c> removes rooms.
/// </summary>
public sealed class BroadcastOperator
{
    private readonly SocketIONamespace _nsp;
    private readonly BroadcastOptions _options;

    internal BroadcastOperator(SocketIONamespace nsp, BroadcastOptions? options = null)
    {
        _nsp = nsp;
        _options = options ?? BroadcastOptions.All;
    }

    /// <summary>The selection so far.</summary>
    public BroadcastOptions Options => _options;

    /// <summary>Also targets the sockets in <paramref name="rooms"/>.</summary>
    public BroadcastOperator To(params string[] rooms) => new(_nsp, _options with { Rooms = Union(_options.Rooms, rooms) });

    /// <summary>Same as <see cref="To"/>.</summary>
    public BroadcastOperator In(params string[] rooms) => To(rooms);

    /// <summary>Leaves out the sockets in <paramref name="rooms"/>.</summary>
    public BroadcastOperator Except(params string[] rooms) => new(_nsp, _options with { Except = Union(_options.Except, rooms) });

    /// <summary>The event may be lost if a client is not ready to receive it.</summary>
    public BroadcastOperator Volatile => new(_nsp, _options with { Volatile = true });

    /// <summary>Only the sockets of this node.</summary>
    public BroadcastOperator Local => new(_nsp, _options with { Local = true });

    /// <summary>With <see cref="EmitWithAckAsync"/>: how long to wait for every acknowledgement.</summary>
    public BroadcastOperator Timeout(TimeSpan timeout) => new(_nsp, _options with { Timeout = timeout });

    /// <summary>Sends an event to the selected sockets; byte[] values anywhere in the arguments go as binary.</summary>
    public void Emit(string eventName, params object?[] args)
    {
        SocketIOSocket.CheckEventName(eventName);
        _nsp.Adapter.Broadcast(new BroadcastMessage(eventName, args), _options);
    }

    /// <summary>
    /// Emits and collects one acknowledgement per recipient. Throws <see cref="TimeoutException"/>
    /// when some did not answer within <see cref="Timeout"/> (default 5 s).
    /// </summary>
    public async Task<IReadOnlyList<AckResponse>> EmitWithAckAsync(string eventName, object?[] args, CancellationToken cancellationToken = default)
    {
        SocketIOSocket.CheckEventName(eventName);
        var options = _options.Timeout is null ? _options with { Timeout = TimeSpan.FromSeconds(5) } : _options;
        var result = await _nsp.Adapter.BroadcastWithAckAsync(new BroadcastMessage(eventName, args), options, cancellationToken);
        if (result.TimedOut)
        {
            throw new TimeoutException($"{result.Expected - result.Responses.Count} of {result.Expected} clients did not acknowledge in time.");
        }

        return result.Responses;
    }

    /// <summary>The selected sockets, on every node.</summary>
    public Task<IReadOnlyList<RemoteSocket>> FetchSocketsAsync(CancellationToken cancellationToken = default) =>
        _nsp.Adapter.FetchSocketsAsync(_options, cancellationToken);

    /// <summary>Makes the selected sockets join <paramref name="rooms"/>.</summary>
    public void SocketsJoin(params string[] rooms) => _nsp.Adapter.AddSockets(_options, rooms);

    /// <summary>Makes the selected sockets leave <paramref name="rooms"/>.</summary>
    public void SocketsLeave(params string[] rooms) => _nsp.Adapter.DelSockets(_options, rooms);

    /// <summary>Disconnects the selected sockets, closing their connections when <paramref name="close"/>.</summary>
    public void DisconnectSockets(bool close = false) => _nsp.Adapter.DisconnectSockets(_options, close);

    private static HashSet<string> Union(IReadOnlySet<string> existing, string[] more)
    {
        var set = new HashSet<string>(existing, StringComparer.Ordinal);
        set.UnionWith(more);
        return set;
    }
}
