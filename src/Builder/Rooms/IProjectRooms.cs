using Builder.Events;
using SocketIO;

namespace Builder.Rooms;

/// <summary>
/// How the domain reaches a project's viewers (room <c>project:{id}</c>), whichever way the
/// gateway runs: <see cref="LocalProjectRooms"/> on one node, <see cref="ClusterProjectRooms"/> on
/// several nodes sharing Redis. The publisher and the hub call it; neither knows which runs.
/// </summary>
public interface IProjectRooms
{
    /// <summary>Called by the publisher right after <paramref name="envelope"/> is in the log, holding the project's gate.</summary>
    void Deliver(EventEnvelope envelope);

    /// <summary>
    /// Runs a join's switch from replay to live events: no event of the project reaches this node's
    /// room while <paramref name="action"/> runs, and every event up to the seq it is given (the
    /// replay horizon) is one the room has had or will never be sent live, every later one will be.
    /// </summary>
    Task<T> SwitchToLiveAsync<T>(string projectId, Func<long, Task<T>> action, CancellationToken cancellationToken = default);

    /// <summary>Adds the socket to the project's room; returns the distinct users of the project's rooms (on every node).</summary>
    Task<int> JoinAsync(SocketIOSocket socket, string projectId, string userId);

    /// <summary>Removes the socket from the project's room.</summary>
    Task LeaveAsync(SocketIOSocket socket, string projectId);
}

/// <summary>The rooms of a single node: delivery straight to the room, under the publisher's gate.</summary>
public sealed class LocalProjectRooms(SocketIONamespace nsp, IEventLog log, ProjectGates gates, Hub.GatewayMetrics? metrics = null) : IProjectRooms
{
    public void Deliver(EventEnvelope envelope)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        nsp.To(EventPublisher.Room(envelope.ProjectId)).Emit(envelope.Type, envelope);
        metrics?.Delivered(envelope);
    }

    public Task<T> SwitchToLiveAsync<T>(string projectId, Func<long, Task<T>> action, CancellationToken cancellationToken = default) =>
        gates.RunAsync(projectId, async () => await action(await log.LatestSeqAsync(projectId, cancellationToken)), cancellationToken);

    public async Task<int> JoinAsync(SocketIOSocket socket, string projectId, string userId)
    {
        ArgumentNullException.ThrowIfNull(socket);
        var room = EventPublisher.Room(projectId);
        socket.Join(room);
        var sockets = await nsp.To(room).FetchSocketsAsync();
        var users = new HashSet<string>(StringComparer.Ordinal);
        foreach (var s in sockets)
        {
            if (s.Data.GetValueOrDefault(Hub.BuilderConnection.DataKey) is Hub.BuilderConnection c)
            {
                users.Add(c.Identity.UserId);
            }
        }

        return users.Count;
    }

    public Task LeaveAsync(SocketIOSocket socket, string projectId)
    {
        ArgumentNullException.ThrowIfNull(socket);
        socket.Leave(EventPublisher.Room(projectId));
        return Task.CompletedTask;
    }
}
