using System.Text.Json;
using SocketIOClient;
using SocketIOClient.Transport;
using Client = SocketIOClient.SocketIO;

namespace Cluster.Tests;

/// <summary>A viewer on /builder (the NuGet client SocketIOClient), every event recorded in arrival order.</summary>
public sealed class Viewer : IAsyncDisposable
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private readonly Client _client;
    private readonly List<(string Name, JsonElement Data)> _events = [];

    public Viewer(Uri node, string token, TransportProtocol transport = TransportProtocol.WebSocket, string path = "/socket.io")
    {
        _client = new Client(new Uri(node, "/builder"), new SocketIOOptions
        {
            EIO = 4,
            Path = path,
            Transport = transport,
            AutoUpgrade = false,
            Reconnection = false,
            ConnectionTimeout = Wait,
            Auth = new { token },
        });
        _client.OnAny((name, response) =>
        {
            var data = response.Count > 0 ? response.GetValue(0).Clone() : default;
            lock (_events)
            {
                _events.Add((name, data));
            }
        });
    }

    public bool Connected => _client.Connected;

    /// <summary>The events received so far, in arrival order.</summary>
    public List<(string Name, JsonElement Data)> Events
    {
        get
        {
            lock (_events)
            {
                return [.. _events];
            }
        }
    }

    /// <summary>The project events received so far (those with a seq), in arrival order.</summary>
    public List<JsonElement> ProjectEvents(string projectId) =>
        [.. Events.Where(e => e.Data.ValueKind == JsonValueKind.Object && e.Data.TryGetProperty("seq", out _) && e.Data.TryGetProperty("eventId", out _)
            && e.Data.TryGetProperty("projectId", out var p) && p.GetString() == projectId).Select(e => e.Data)];

    public async Task ConnectAsync()
    {
        await _client.ConnectAsync().WaitAsync(Wait);
        await Deadline.UntilAsync(() => Events.Any(e => e.Name == "authenticated"), Wait, "authenticated");
    }

    /// <summary>join-project; returns its ack once it is ok.</summary>
    public async Task<JsonElement> JoinAsync(string projectId, long? lastSeq = null)
    {
        var ack = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        object payload = lastSeq is null ? new { projectId } : new { projectId, lastSeq };
        await _client.EmitAsync("join-project", response => ack.TrySetResult(response.GetValue(0).Clone()), payload).WaitAsync(Wait);
        var result = await ack.Task.WaitAsync(Wait);
        Assert.True(result.GetProperty("ok").GetBoolean(), "join-project refused: " + result.GetRawText());
        return result;
    }

    /// <summary>A round trip (a leave-project of a project never joined): what the node sent before its answer has arrived.</summary>
    public async Task BarrierAsync()
    {
        var ack = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _client.EmitAsync("leave-project", response => ack.TrySetResult(response.GetValue(0).Clone()), new { projectId = "barrier-project" }).WaitAsync(Wait);
        Assert.True((await ack.Task.WaitAsync(Wait)).GetProperty("ok").GetBoolean());
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
            // SocketIOClient may dispose its token source during DisconnectAsync already
        }
    }
}
