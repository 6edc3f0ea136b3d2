using System.Collections.Concurrent;
using System.Text.Json;
using System.Threading.Channels;
using SocketIOClient;
using SocketIOClient.Transport;
using Client = SocketIOClient.SocketIO;

namespace Builder.Tests.Infrastructure;

/// <summary>One event as the client saw it: its name and first argument (the envelope).</summary>
public sealed record ReceivedEvent(string Name, JsonElement Data)
{
    public override string ToString() => $"{Name} {Data.GetRawText()}";
}

/// <summary>
/// The NuGet client SocketIOClient 3.0.6 on /builder: every event is recorded (in arrival order)
/// so that nothing received before a test looks is lost, and every wait has a deadline.
/// </summary>
public sealed class BuilderClient : IAsyncDisposable
{
    private static readonly TimeSpan Wait = TestGateway.Wait;

    private readonly Client _client;
    private readonly ConcurrentDictionary<string, Channel<JsonElement>> _byName = new(StringComparer.Ordinal);
    private readonly Channel<ReceivedEvent> _all = Channel.CreateUnbounded<ReceivedEvent>();
    private readonly TaskCompletionSource<string> _disconnected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _connectError = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BuilderClient(Uri builderUrl, string? token, TransportProtocol transport)
    {
        var options = new SocketIOOptions
        {
            EIO = 4,
            Transport = transport,
            AutoUpgrade = transport == TransportProtocol.Polling,
            Reconnection = false,
            ConnectionTimeout = Wait,
        };
        if (token is not null)
        {
            options.Auth = new { token };
        }

        _client = new Client(builderUrl, options);
        _client.OnAny((name, response) => Record(name, response));
        _client.OnConnected += (_, _) => _connected.TrySetResult();
        _client.OnError += (_, message) => _connectError.TrySetResult(message);
        _client.OnDisconnected += (_, reason) => _disconnected.TrySetResult(reason);
    }

    /// <summary>Answers every <c>ping</c> with <c>pong</c>, as the document asks of clients.</summary>
    public bool AnswerPings { get; set; }

    public bool Connected => _client.Connected;

    public Task<string> Disconnected => _disconnected.Task;

    public Task<string> ConnectError => _connectError.Task;

    public Client Raw => _client;

    private void Record(string name, SocketIOResponse response)
    {
        var data = response.Count > 0 ? response.GetValue(0).Clone() : default;
        _all.Writer.TryWrite(new ReceivedEvent(name, data));
        Queue(name).Writer.TryWrite(data);
        if (name == "ping" && AnswerPings)
        {
            _ = _client.EmitAsync("pong", (object?)null!);
        }
    }

    private Channel<JsonElement> Queue(string name) => _byName.GetOrAdd(name, static _ => Channel.CreateUnbounded<JsonElement>());

    /// <summary>Connects and waits for the gateway's <c>authenticated</c> event.</summary>
    public async Task<JsonElement> ConnectAsync()
    {
        await ConnectOnlyAsync();
        return await NextAsync("authenticated");
    }

    /// <summary>Connects; fails with the connect_error message when the gateway refuses.</summary>
    public async Task ConnectOnlyAsync()
    {
        await _client.ConnectAsync().WaitAsync(Wait);
        var done = await Task.WhenAny(_connected.Task, _connectError.Task).WaitAsync(Wait);
        if (done == _connectError.Task)
        {
            throw new InvalidOperationException("connect_error: " + await _connectError.Task);
        }
    }

    /// <summary>The next <paramref name="name"/> event (first argument), in arrival order.</summary>
    public async Task<JsonElement> NextAsync(string name, TimeSpan? wait = null)
    {
        try
        {
            return await Queue(name).Reader.ReadAsync().AsTask().WaitAsync(wait ?? Wait);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no \"{name}\" event within {(wait ?? Wait).TotalSeconds:0} s");
        }
    }

    /// <summary>The next event of any name, in arrival order (a separate stream from <see cref="NextAsync"/>).</summary>
    public async Task<ReceivedEvent> NextAnyAsync(TimeSpan? wait = null)
    {
        try
        {
            return await _all.Reader.ReadAsync().AsTask().WaitAsync(wait ?? Wait);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no event within {(wait ?? Wait).TotalSeconds:0} s");
        }
    }

    /// <summary>Events of <paramref name="name"/> received and not yet taken.</summary>
    public int Pending(string name) => Queue(name).Reader.Count;

    /// <summary>Takes every already received event of <paramref name="name"/>.</summary>
    public List<JsonElement> Drain(string name)
    {
        var list = new List<JsonElement>();
        while (Queue(name).Reader.TryRead(out var item))
        {
            list.Add(item);
        }

        return list;
    }

    /// <summary>Takes every already received event (any name) from the ordered stream.</summary>
    public List<ReceivedEvent> DrainAll()
    {
        var list = new List<ReceivedEvent>();
        while (_all.Reader.TryRead(out var item))
        {
            list.Add(item);
        }

        return list;
    }

    public Task EmitAsync(string name, params object[] args) => _client.EmitAsync(name, args).WaitAsync(Wait);

    /// <summary>Emits with an ack request and returns the ack's first argument.</summary>
    public async Task<JsonElement> EmitWithAckAsync(string name, params object[] args)
    {
        var ack = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _client.EmitAsync(name, response => ack.TrySetResult(response.Count > 0 ? response.GetValue(0).Clone() : default), args).WaitAsync(Wait);
        try
        {
            return await ack.Task.WaitAsync(Wait);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no ack for \"{name}\" within {Wait.TotalSeconds:0} s");
        }
    }

    /// <summary>join-project; returns the ack after the <c>project-joined</c> event arrived.</summary>
    public async Task<JsonElement> JoinAsync(string projectId, long? lastSeq = null)
    {
        object payload = lastSeq is null ? new { projectId } : new { projectId, lastSeq };
        var ack = await EmitWithAckAsync("join-project", payload);
        Assert.True(ack.GetProperty("ok").GetBoolean(), "join-project refused: " + ack.GetRawText());
        var joined = await NextAsync("project-joined");
        Assert.Equal(projectId, joined.GetProperty("projectId").GetString());
        return ack;
    }

    /// <summary>
    /// A round trip through the gateway: everything it sent this client before answering has
    /// arrived (a leave-project of a project never joined, acknowledged in order).
    /// </summary>
    public async Task BarrierAsync()
    {
        var ack = await EmitWithAckAsync("leave-project", new { projectId = "barrier-project" });
        Assert.True(ack.GetProperty("ok").GetBoolean(), "barrier refused: " + ack.GetRawText());
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_client.Connected)
            {
                await _client.DisconnectAsync().WaitAsync(Wait);
            }
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or ObjectDisposedException)
        {
            // best effort
        }

        try
        {
            _client.Dispose();
        }
        catch (ObjectDisposedException)
        {
            // SocketIOClient 3.0.6 may dispose its token source during DisconnectAsync already
        }
    }
}
