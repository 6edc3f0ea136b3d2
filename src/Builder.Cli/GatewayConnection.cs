using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using SocketIOClient;
using SocketIOClient.Transport;

namespace Builder.Cli;

/// <summary>One event received from the gateway: its name and its arguments.</summary>
public sealed record ReceivedEvent(string Name, IReadOnlyList<JsonElement> Args)
{
    /// <summary>The first argument (the document's envelope), or null.</summary>
    public JsonElement? Data => Args.Count > 0 ? Args[0] : null;
}

/// <summary>
/// A Socket.IO connection to the gateway through the SocketIOClient package: connects (telling an
/// unreachable gateway from a refused credential, whose error code it reads), answers the
/// application heartbeat (<c>ping</c> → <c>pong</c>), and queues every other event it receives.
/// </summary>
public sealed class GatewayConnection : IAsyncDisposable
{
    private readonly SocketIOClient.SocketIO _client;
    private readonly GatewayAddress _address;
    private readonly JsonElement? _auth;
    private readonly TimeSpan _timeout;
    private readonly Channel<ReceivedEvent> _events = Channel.CreateBounded<ReceivedEvent>(new BoundedChannelOptions(100_000) { FullMode = BoundedChannelFullMode.Wait });
    private TaskCompletionSource<string?> _connected = NewSignal();

    private GatewayConnection(GatewayAddress address, JsonElement? auth, bool reconnect, TimeSpan timeout)
    {
        _address = address;
        _auth = auth;
        _timeout = timeout;
        var options = new SocketIOOptions
        {
            EIO = 4,
            Path = address.Path,
            Transport = TransportProtocol.WebSocket,
            Reconnection = reconnect,
            ReconnectionAttempts = reconnect ? 1000 : 0,
            ReconnectionDelay = 500,
            ConnectionTimeout = timeout,
        };
        if (auth is { } a)
        {
            options.Auth = a;
        }

        _client = new SocketIOClient.SocketIO(address.NamespaceUrl, options);
        _client.OnConnected += (_, _) =>
        {
            _connected.TrySetResult(null);
            Connected?.Invoke();
        };
        _client.OnError += (_, message) => _connected.TrySetResult(message ?? "connect_error");
        _client.OnDisconnected += (_, reason) =>
        {
            if (!reconnect || reason is "io server disconnect")
            {
                _events.Writer.TryWrite(new ReceivedEvent(DisconnectEvent, [JsonSerializer.SerializeToElement(reason)]));
            }

            _connected = NewSignal();
        };
        _client.OnAny((name, response) =>
        {
            if (name == "ping")
            {
                // the document's application heartbeat: answered at once, so the gateway keeps us
                _ = _client.EmitAsync("pong");
                Pinged?.Invoke();
                return;
            }

            _events.Writer.TryWrite(new ReceivedEvent(name, Args(response)));
        });
    }

    /// <summary>How long a connection or an ack is waited for when no <c>--timeout</c> says otherwise.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The pseudo-event queued when the connection ends for good (its argument: the reason).</summary>
    public const string DisconnectEvent = "$disconnect";

    /// <summary>Raised on every (re)connection, on the client's thread.</summary>
    public event Action? Connected;

    /// <summary>Raised when the gateway's heartbeat ping was answered.</summary>
    public event Action? Pinged;

    /// <summary>The events received, in order.</summary>
    public ChannelReader<ReceivedEvent> Events => _events.Reader;

    /// <summary>
    /// Connects to <paramref name="address"/> with <paramref name="auth"/> (the handshake's auth
    /// object). Throws <see cref="CliException"/>: exit 3 when nothing answers, exit 4 with the
    /// gateway's code when the credential is refused, exit 1 for any other refusal.
    /// </summary>
    public static async Task<GatewayConnection> ConnectAsync(GatewayAddress address, JsonElement? auth, bool reconnect, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await CheckReachableAsync(address, timeout, cancellationToken);
        var connection = new GatewayConnection(address, auth, reconnect, timeout);
        try
        {
            await connection.ConnectCoreAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task ConnectCoreAsync(CancellationToken cancellationToken)
    {
        var signal = _connected;
        try
        {
            await _client.ConnectAsync().WaitAsync(_timeout, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            if (!signal.Task.IsCompleted)
            {
                throw new CliException(ExitCodes.Unreachable, $"Cannot connect to {_address.NamespaceUrl} (path {_address.Path}): {ex.Message}");
            }
        }

        string? refusal;
        try
        {
            refusal = await signal.Task.WaitAsync(_timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new CliException(ExitCodes.Unreachable, $"Cannot connect to {_address.NamespaceUrl} (path {_address.Path}): no answer within {_timeout.TotalSeconds:0} s");
        }

        if (refusal is not null)
        {
            // the client gives only the connect_error's message: its data (the code) is read again
            // from the gateway with one plain polling handshake
            var (code, detail) = await ConnectErrorProbe.ReadAsync(_address, _auth, _timeout, cancellationToken);
            var text = $"The gateway refused the connection to {_address.Namespace}: {refusal}";
            if (code is not null)
            {
                text += $" ({code}{(detail is null ? string.Empty : ": " + detail)})";
            }

            throw new CliException(CliException.ExitCodeOf(code) is var exit && exit != ExitCodes.Failed ? exit : (refusal.Contains("Authentication", StringComparison.OrdinalIgnoreCase) ? ExitCodes.AuthRefused : ExitCodes.Failed), text, code);
        }
    }

    /// <summary>A plain HTTP request to the Engine.IO endpoint: "nothing answers" is told apart from any refusal.</summary>
    private static async Task CheckReachableAsync(GatewayAddress address, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = timeout };
        try
        {
            using var response = await http.GetAsync(address.Http($"{address.Path}/?EIO=4&transport=polling"), cancellationToken);
            if ((int)response.StatusCode == 404)
            {
                throw new CliException(ExitCodes.Unreachable, $"{address.Server} answers, but not as a Socket.IO server at path {address.Path} (404)");
            }

            var body = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.IsSuccessStatusCode && body.StartsWith('0') && body.Contains("\"sid\"", StringComparison.Ordinal))
            {
                // the probe's session is closed at once so it does not wait for its ping timeout
                var sid = JsonDocument.Parse(body.AsMemory(1)).RootElement.GetProperty("sid").GetString();
                using var close = new StringContent("1", Encoding.UTF8, "text/plain");
                using var _ = await http.PostAsync(address.Http($"{address.Path}/?EIO=4&transport=polling&sid={Uri.EscapeDataString(sid!)}"), close, cancellationToken);
            }
        }
        catch (HttpRequestException ex)
        {
            var reason = ex.InnerException is SocketException s ? s.Message : ex.Message;
            throw new CliException(ExitCodes.Unreachable, $"The gateway at {address.Server} is unreachable: {reason}");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(ExitCodes.Unreachable, $"The gateway at {address.Server} did not answer within {timeout.TotalSeconds:0} s");
        }
    }

    /// <summary>Waits for the next (re)connection, for <see cref="EmitAsync"/> after a drop.</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken) => _connected.Task.WaitAsync(cancellationToken);

    /// <summary>Emits <paramref name="eventName"/> and returns the gateway's ack (its first argument), or null when none came within the timeout.</summary>
    public async Task<JsonElement?> EmitAsync(string eventName, IReadOnlyList<JsonElement> args, CancellationToken cancellationToken)
    {
        var ack = new TaskCompletionSource<JsonElement?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await _client.EmitAsync(eventName, response => ack.TrySetResult(response.Count > 0 ? response.GetValue(0).Clone() : null), args.Cast<object>().ToArray());
        try
        {
            return await ack.Task.WaitAsync(_timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    private static List<JsonElement> Args(SocketIOResponse response)
    {
        var args = new List<JsonElement>(response.Count);
        for (var i = 0; i < response.Count; i++)
        {
            args.Add(response.GetValue(i).Clone());
        }

        // connection state recovery appends the packet's offset (a string) to events sent without
        // an ack request: it is the transport's business, not the event's
        if (args.Count == 2 && args[1].ValueKind == JsonValueKind.String && args[0].ValueKind == JsonValueKind.Object)
        {
            args.RemoveAt(1);
        }

        return args;
    }

    private static TaskCompletionSource<string?> NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public async ValueTask DisposeAsync()
    {
        _events.Writer.TryComplete();
        try
        {
            if (_client.Connected)
            {
                await _client.DisconnectAsync().WaitAsync(TimeSpan.FromSeconds(2));
            }
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or ObjectDisposedException or System.Net.WebSockets.WebSocketException)
        {
            // closing is best effort: the process ends anyway
        }

        _client.Dispose();
    }
}
