using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;

namespace SocketIO.Tests.Protocol;

/// <summary>One WebSocket message as received: either text or binary.</summary>
public sealed record WsMessage(string? Text, byte[]? Binary)
{
    public bool IsText => Text is not null;

    public override string ToString() => Text is not null ? $"text \"{Text}\"" : $"binary <{Convert.ToHexString(Binary!)}>";
}

/// <summary>
/// A minimal WebSocket client in the spirit of the suites' <c>createWebSocket()</c>/<c>waitFor()</c>:
/// a background loop buffers every received message in a channel; tests await the next message or
/// the close with a deadline instead of sleeping.
/// </summary>
public sealed class RawWebSocket : IAsyncDisposable
{
    private readonly ClientWebSocket _socket;
    private readonly Channel<WsMessage> _messages = Channel.CreateUnbounded<WsMessage>(
        new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly Task _receiveLoop;

    private RawWebSocket(ClientWebSocket socket)
    {
        _socket = socket;
        _receiveLoop = Task.Run(ReceiveLoopAsync);
    }

    /// <summary>True once the server closed the connection (close frame or connection lost).</summary>
    public bool IsClosed => _closed.Task.IsCompleted;

    /// <summary>Opens the connection (the JS "open" event). A refused upgrade throws <see cref="WebSocketException"/>.</summary>
    public static async Task<RawWebSocket> ConnectAsync(Uri uri)
    {
        var socket = new ClientWebSocket();
        socket.Options.Proxy = null;
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var cts = new CancellationTokenSource(ProtocolServerFixture.Deadline);
        try
        {
            await socket.ConnectAsync(uri, cts.Token);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new RawWebSocket(socket);
    }

    /// <summary>
    /// The JS <c>await waitFor(createWebSocket(url), "close")</c>: succeeds if the server refuses the
    /// upgrade (<see cref="WebSocketException"/> from ConnectAsync) or accepts it and then closes it.
    /// </summary>
    public static async Task ExpectCloseAsync(Uri uri)
    {
        RawWebSocket socket;
        try
        {
            socket = await ConnectAsync(uri);
        }
        catch (WebSocketException)
        {
            return;
        }

        await using (socket)
        {
            await socket.WaitForCloseAsync();
        }
    }

    public Task SendTextAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text);

    public Task SendBinaryAsync(byte[] data) => SendAsync(data, WebSocketMessageType.Binary);

    /// <summary>The next buffered message; fails if none arrives before the deadline or the socket closes first.</summary>
    public async Task<WsMessage> ReceiveAsync(TimeSpan? deadline = null)
    {
        var timeout = deadline ?? ProtocolServerFixture.Deadline;
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            return await _messages.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no WebSocket message within {timeout.TotalMilliseconds} ms");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"WebSocket closed before the expected message arrived ({await _closed.Task})");
        }
    }

    /// <summary>The next message, which must be a text frame.</summary>
    public async Task<string> ReceiveTextAsync(TimeSpan? deadline = null)
    {
        var message = await ReceiveAsync(deadline);
        Assert.True(message.IsText, $"expected a text frame, got {message}");
        return message.Text!;
    }

    /// <summary>
    /// The suite's <c>waitForPackets(socket, count)</c>: the next <paramref name="count"/> messages,
    /// ignoring PING ("2") packets.
    /// </summary>
    public async Task<List<WsMessage>> ReceivePacketsAsync(int count)
    {
        var packets = new List<WsMessage>();
        while (packets.Count < count)
        {
            var message = await ReceiveAsync();
            if (message.Text == "2")
            {
                continue;
            }

            packets.Add(message);
        }

        return packets;
    }

    /// <summary>
    /// The next message that is not a PING; PINGs are answered with a PONG so the session stays
    /// alive. Only for the extra tests, not the ported suites.
    /// </summary>
    public async Task<WsMessage> ReceiveAnsweringPingsAsync()
    {
        while (true)
        {
            var message = await ReceiveAsync();
            if (message.Text != "2")
            {
                return message;
            }

            await SendTextAsync("3");
        }
    }

    /// <summary>
    /// The JS <c>waitFor(socket, "close")</c>: waits for the server to close the connection, whatever
    /// messages arrive meanwhile (they stay buffered, see <see cref="DrainBufferedMessages"/>).
    /// </summary>
    public async Task<string> WaitForCloseAsync(TimeSpan? deadline = null)
    {
        var timeout = deadline ?? ProtocolServerFixture.Deadline;
        try
        {
            return await _closed.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"the server did not close the WebSocket within {timeout.TotalMilliseconds} ms");
        }
    }

    /// <summary>Messages received but not consumed yet.</summary>
    public List<WsMessage> DrainBufferedMessages()
    {
        var messages = new List<WsMessage>();
        while (_messages.Reader.TryRead(out var message))
        {
            messages.Add(message);
        }

        return messages;
    }

    /// <summary>The JS <c>socket.close()</c>: closing handshake, then release.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, cts.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
            {
                // the server went away first: nothing to close
            }

            try
            {
                // the server answers the close frame; the receive loop then ends on its own
                await _receiveLoop.WaitAsync(TimeSpan.FromSeconds(1));
            }
            catch (TimeoutException)
            {
                // the server did not complete the closing handshake: abort below
            }
        }

        _socket.Abort();
        await _receiveLoop;
        _socket.Dispose();
        _sendLock.Dispose();
    }

    private async Task SendAsync(byte[] data, WebSocketMessageType type)
    {
        using var cts = new CancellationTokenSource(ProtocolServerFixture.Deadline);
        await _sendLock.WaitAsync(cts.Token);
        try
        {
            await _socket.SendAsync(data, type, endOfMessage: true, cts.Token);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReceiveLoopAsync()
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (true)
            {
                var result = await _socket.ReceiveAsync(new ArraySegment<byte>(buffer), CancellationToken.None);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    _closed.TrySetResult($"close frame {(int?)result.CloseStatus} {result.CloseStatusDescription}");
                    try
                    {
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None);
                    }
                    catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        // the connection is gone already
                    }

                    return;
                }

                message.Write(buffer, 0, result.Count);
                if (!result.EndOfMessage)
                {
                    continue;
                }

                var bytes = message.ToArray();
                message.SetLength(0);
                _messages.Writer.TryWrite(result.MessageType == WebSocketMessageType.Text
                    ? new WsMessage(Encoding.UTF8.GetString(bytes), null)
                    : new WsMessage(null, bytes));
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            _closed.TrySetResult($"connection lost: {ex.Message}");
        }
        finally
        {
            _closed.TrySetResult("receive loop ended");
            _messages.Writer.TryComplete();
        }
    }
}
