namespace Builder.Events;

/// <summary>
/// One asynchronous gate per project on this node, held while an event of the project is appended
/// and delivered, or while a join switches from replay to live events. A gate exists only while
/// someone holds it or waits for it, so that ids from clients leave nothing behind.
/// </summary>
public sealed class ProjectGates
{
    private readonly Dictionary<string, Gate> _gates = new(StringComparer.Ordinal);

    /// <summary>Gates held or awaited now (tests).</summary>
    public int Count
    {
        get
        {
            lock (_gates)
            {
                return _gates.Count;
            }
        }
    }

    /// <summary>Runs <paramref name="action"/> holding the project's gate.</summary>
    public async Task<T> RunAsync<T>(string projectId, Func<Task<T>> action, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        var gate = await EnterAsync(projectId, cancellationToken);
        try
        {
            return await action();
        }
        finally
        {
            gate.Semaphore.Release();
            Leave(projectId, gate);
        }
    }

    private async Task<Gate> EnterAsync(string projectId, CancellationToken cancellationToken)
    {
        Gate? gate;
        lock (_gates)
        {
            if (!_gates.TryGetValue(projectId, out gate))
            {
                _gates[projectId] = gate = new Gate();
            }

            gate.Users++;
        }

        try
        {
            await gate.Semaphore.WaitAsync(cancellationToken);
        }
        catch
        {
            Leave(projectId, gate);
            throw;
        }

        return gate;
    }

    private void Leave(string projectId, Gate gate)
    {
        lock (_gates)
        {
            if (--gate.Users == 0)
            {
                _gates.Remove(projectId);
            }
        }
    }

    /// <summary>A project's gate and how many hold it or wait for it.</summary>
    private sealed class Gate
    {
        public readonly SemaphoreSlim Semaphore = new(1, 1);
        public int Users; // under the lock of the dictionary
    }
}
