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

    /// <summary>
    /// Queues <paramref name="item"/> (of <paramref name="weight"/>, e.g. its events) for the
    /// project and completes with its result once processed. One caller at a time drains a
    /// project's queue: holding the gate, it hands <paramref name="run"/> everything queued (in
    /// arrival order, up to <paramref name="maxWeight"/>, at least one item), then releases the
    /// gate (so that a join waiting for it gets its turn) and takes the next items. Concurrent
    /// producers of one project are thus served by one call of <paramref name="run"/> per batch,
    /// in the order they were queued. <paramref name="run"/> returns one result per item, in
    /// order; when it throws, every item of the batch fails with its exception. A project's
    /// items must all be combined with the same <typeparamref name="TItem"/> and <typeparamref name="TResult"/>.
    /// </summary>
    public Task<TResult> CombineAsync<TItem, TResult>(string projectId, TItem item, int weight, int maxWeight, Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var entry = new Combined<TItem, TResult>(item, weight);
        Gate? gate;
        bool drain;
        lock (_gates)
        {
            if (!_gates.TryGetValue(projectId, out gate))
            {
                _gates[projectId] = gate = new Gate();
            }

            gate.Users++; // the item's, until it is processed
            (gate.Queue ??= new Queue<object>()).Enqueue(entry);
            drain = !gate.Draining;
            if (drain)
            {
                gate.Draining = true;
                gate.Users++; // the drainer's
            }
        }

        if (drain)
        {
            // the caller drains (its item is the first queued): no hop to another thread; its
            // answer comes from the first batch, while the drain goes on with what arrived since
            _ = DrainAsync(projectId, gate, maxWeight, run);
        }

        return entry.Done.Task;
    }

    private async Task DrainAsync<TItem, TResult>(string projectId, Gate gate, int maxWeight, Func<IReadOnlyList<TItem>, Task<IReadOnlyList<TResult>>> run)
    {
        var taken = new List<Combined<TItem, TResult>>();
        var items = new List<TItem>();
        var first = true;
        while (true)
        {
            if (!first)
            {
                // later batches on the pool: the caller that began the drain is answered at once
                await Task.Yield();
            }

            first = false;
            await gate.Semaphore.WaitAsync().ConfigureAwait(false);
            var weight = 0;
            lock (_gates)
            {
                while (gate.Queue!.Count > 0 && (taken.Count == 0 || weight + ((Combined<TItem, TResult>)gate.Queue.Peek()).Weight <= maxWeight))
                {
                    var next = (Combined<TItem, TResult>)gate.Queue.Dequeue();
                    weight += next.Weight;
                    taken.Add(next);
                }

                if (taken.Count == 0)
                {
                    gate.Draining = false;
                }
            }

            if (taken.Count == 0)
            {
                gate.Semaphore.Release();
                Leave(projectId, gate);
                return;
            }

            try
            {
                foreach (var t in taken)
                {
                    items.Add(t.Item);
                }

                var results = await run(items).ConfigureAwait(false);
                for (var i = 0; i < taken.Count; i++)
                {
                    taken[i].Done.TrySetResult(results[i]);
                }
            }
#pragma warning disable CA1031 // the failure is each producer's answer
            catch (Exception ex)
#pragma warning restore CA1031
            {
                foreach (var t in taken)
                {
                    t.Done.TrySetException(ex);
                }
            }
            finally
            {
                gate.Semaphore.Release();
                lock (_gates)
                {
                    gate.Users -= taken.Count; // the drainer's stays: the gate is not removed here
                }

                taken.Clear();
                items.Clear();
            }

            // nothing more queued: done without another turn (and without a hop to the pool)
            var idle = false;
            lock (_gates)
            {
                if (gate.Queue!.Count == 0)
                {
                    gate.Draining = false;
                    idle = true;
                }
            }

            if (idle)
            {
                Leave(projectId, gate);
                return;
            }
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
        public Queue<object>? Queue; // items waiting for CombineAsync's drainer, under the lock
        public bool Draining; // under the lock
    }

    private sealed class Combined<TItem, TResult>(TItem item, int weight)
    {
        public TItem Item { get; } = item;

        public int Weight { get; } = weight;

        public TaskCompletionSource<TResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
