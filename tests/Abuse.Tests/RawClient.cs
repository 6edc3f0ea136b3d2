using System.Buffers.Binary;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Abuse.Tests;

/// <summary>
/// A WebSocket client over a bare TCP socket, as an attacker writes one: it sends exactly the
/// frames it is told to (pings, oversized frames, nothing at all) and reads only when asked.
/// </summary>
public sealed class RawWs : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawWs(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public Socket Socket => _tcp.Client;

    public static async Task<RawWs> ConnectAsync(int port, string target = "/socket.io/?EIO=4&transport=websocket", int receiveBuffer = 0)
    {
        var tcp = new TcpClient();
        if (receiveBuffer > 0)
        {
            tcp.ReceiveBufferSize = receiveBuffer;
        }

        await tcp.ConnectAsync("127.0.0.1", port);
        var ws = new RawWs(tcp);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var head = $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await ws._stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        var response = await ws.ReadHeadAsync();
        if (!response.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
        {
            await ws.DisposeAsync();
            throw new InvalidOperationException("WebSocket upgrade refused: " + response);
        }

        return ws;
    }

    private async Task<string> ReadHeadAsync()
    {
        while (true)
        {
            var text = Encoding.ASCII.GetString(_buffer, _start, _end - _start);
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                _start += end + 4;
                return text[..end];
            }

            if (!await FillAsync())
            {
                return text;
            }
        }
    }

    private async Task<bool> FillAsync()
    {
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        var n = await _stream.ReadAsync(_buffer.AsMemory(_end));
        _end += n;
        return n > 0;
    }

    /// <summary>A masked client frame (FIN set).</summary>
    public static byte[] Frame(int opcode, ReadOnlySpan<byte> payload, long? claimedLength = null)
    {
        var length = claimedLength ?? payload.Length;
        var header = length < 126 ? 2 : length <= ushort.MaxValue ? 4 : 10;
        var frame = new byte[header + 4 + payload.Length];
        frame[0] = (byte)(0x80 | opcode);
        if (length < 126)
        {
            frame[1] = (byte)(0x80 | length);
        }
        else if (length <= ushort.MaxValue)
        {
            frame[1] = 0x80 | 126;
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(2), (ushort)length);
        }
        else
        {
            frame[1] = 0x80 | 127;
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(2), (ulong)length);
        }

        var mask = RandomNumberGenerator.GetBytes(4);
        mask.CopyTo(frame, header);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[header + 4 + i] = (byte)(payload[i] ^ mask[i & 3]);
        }

        return frame;
    }

    public ValueTask SendRawAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default) =>
        _stream.WriteAsync(bytes, cancellationToken);

    public ValueTask SendTextAsync(string text) => SendRawAsync(Frame(0x1, Encoding.UTF8.GetBytes(text)));

    /// <summary>The next frame: (opcode, payload), or null when the server closed the connection.</summary>
    public async Task<(int Opcode, byte[] Payload)?> ReceiveAsync()
    {
        while (true)
        {
            var available = _end - _start;
            if (available >= 2)
            {
                var b1 = _buffer[_start + 1] & 0x7F;
                var header = b1 < 126 ? 2 : b1 == 126 ? 4 : 10;
                if (available >= header)
                {
                    long length = b1 < 126 ? b1 : b1 == 126
                        ? BinaryPrimitives.ReadUInt16BigEndian(_buffer.AsSpan(_start + 2))
                        : (long)BinaryPrimitives.ReadUInt64BigEndian(_buffer.AsSpan(_start + 2));
                    if (header + length > 64L * 1024 * 1024)
                    {
                        throw new InvalidOperationException($"a {length}-byte frame is larger than this client reads");
                    }

                    if (header + length > _buffer.Length)
                    {
                        var grown = new byte[header + (int)length];
                        Buffer.BlockCopy(_buffer, _start, grown, 0, available);
                        _buffer = grown;
                        _end = available;
                        _start = 0;
                    }

                    if (available >= header + length)
                    {
                        var opcode = _buffer[_start] & 0x0F;
                        var payload = _buffer.AsSpan(_start + header, (int)length).ToArray();
                        _start += header + (int)length;
                        return (opcode, payload);
                    }
                }
            }

            try
            {
                if (!await FillAsync())
                {
                    return null;
                }
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                return null;
            }
        }
    }

    /// <summary>Reads and drops frames until the server closes the connection; true if it did within <paramref name="timeout"/>.</summary>
    public async Task<bool> ClosedByServerWithinAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                var n = await _stream.ReadAsync(_buffer, cts.Token);
                if (n == 0)
                {
                    return true;
                }
            }
        }
        catch (IOException)
        {
            return true; // reset by the server
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>
/// A minimal Socket.IO v5 client of the /builder namespace over <see cref="RawWs"/>: light enough
/// to run thousands at once. It answers the Engine.IO and the application heartbeat, and records
/// the <c>seq</c> of every project event it receives.
/// </summary>
public sealed class BuilderRawClient : IAsyncDisposable
{
    private const string Prefix = "42/builder,";
    private readonly RawWs _ws;
    private readonly Dictionary<int, TaskCompletionSource<JsonElement>> _acks = [];
    private readonly Lock _gate = new();
    private int _nextAck;
    private Task? _loop;

    private BuilderRawClient(RawWs ws) => _ws = ws;

    /// <summary>Called (on the read loop) for every event with its name and first argument.</summary>
    public Action<BuilderRawClient, string, JsonElement>? OnEvent { get; set; }

    /// <summary>The seqs of the project events received, in arrival order.</summary>
    public List<long> Seqs { get; } = [];

    public List<long> SeqsSnapshot()
    {
        lock (_gate)
        {
            return [.. Seqs];
        }
    }

    public long LastSeq
    {
        get
        {
            lock (_gate)
            {
                return Seqs.Count == 0 ? 0 : Seqs[^1];
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return Seqs.Count;
            }
        }
    }

    public Task Completion => _loop ?? Task.CompletedTask;

    /// <summary>Opens a session and connects /builder with the token; throws with the server's reason if refused.</summary>
    public static async Task<BuilderRawClient> ConnectAsync(int port, string token)
    {
        var ws = await RawWs.ConnectAsync(port);
        var client = new BuilderRawClient(ws);
        try
        {
            var open = await ws.ReceiveAsync() ?? throw new InvalidOperationException("closed before the open packet");
            if (open.Payload.Length == 0 || open.Payload[0] != (byte)'0')
            {
                throw new InvalidOperationException("expected the open packet, got " + Encoding.UTF8.GetString(open.Payload));
            }

            await ws.SendTextAsync("40/builder," + JsonSerializer.Serialize(new { token }));
            while (true)
            {
                var frame = await ws.ReceiveAsync() ?? throw new InvalidOperationException("closed before the namespace connected");
                var text = Encoding.UTF8.GetString(frame.Payload);
                if (text.StartsWith("40/builder,", StringComparison.Ordinal))
                {
                    break;
                }

                if (text.StartsWith("44/builder,", StringComparison.Ordinal))
                {
                    throw new InvalidOperationException("connect_error " + text[11..]);
                }

                if (text == "2")
                {
                    await ws.SendTextAsync("3");
                }
            }

            client._loop = Task.Run(client.ReadLoopAsync);
            return client;
        }
        catch
        {
            await ws.DisposeAsync();
            throw;
        }
    }

    /// <summary>Emits without an acknowledgement.</summary>
    public ValueTask EmitAsync(string eventName, object payload) =>
        _ws.SendTextAsync(Prefix + JsonSerializer.Serialize(new object[] { eventName, payload }));

    /// <summary>Emits with an acknowledgement and returns the ack's first argument.</summary>
    public async Task<JsonElement> EmitWithAckAsync(string eventName, object payload, TimeSpan timeout)
    {
        TaskCompletionSource<JsonElement> ack = new(TaskCreationOptions.RunContinuationsAsynchronously);
        int id;
        lock (_gate)
        {
            id = _nextAck++;
            _acks[id] = ack;
        }

        await _ws.SendTextAsync($"{Prefix}{id}" + JsonSerializer.Serialize(new object[] { eventName, payload }));
        return await ack.Task.WaitAsync(timeout);
    }

    private async Task ReadLoopAsync()
    {
        while (await _ws.ReceiveAsync() is { } frame)
        {
            if (frame.Opcode == 0x8)
            {
                return;
            }

            if (frame.Opcode != 0x1)
            {
                continue;
            }

            var text = Encoding.UTF8.GetString(frame.Payload);
            if (text == "2")
            {
                await _ws.SendTextAsync("3");
            }
            else if (text.StartsWith(Prefix, StringComparison.Ordinal))
            {
                using var doc = JsonDocument.Parse(text.AsMemory(Prefix.Length));
                var name = doc.RootElement[0].GetString();
                if (name == "ping")
                {
                    await _ws.SendTextAsync(Prefix + JsonSerializer.Serialize(new object[] { "pong", new { } }));
                }
                else if (doc.RootElement.GetArrayLength() > 1 && doc.RootElement[1].ValueKind == JsonValueKind.Object)
                {
                    if (doc.RootElement[1].TryGetProperty("seq", out var seq) && doc.RootElement[1].TryGetProperty("eventId", out _))
                    {
                        lock (_gate)
                        {
                            Seqs.Add(seq.GetInt64());
                        }
                    }

                    OnEvent?.Invoke(this, name!, doc.RootElement[1]);
                }
            }
            else if (text.StartsWith("43/builder,", StringComparison.Ordinal))
            {
                var body = text.AsSpan(11);
                var bracket = body.IndexOf('[');
                var id = int.Parse(body[..bracket], System.Globalization.CultureInfo.InvariantCulture);
                using var doc = JsonDocument.Parse(body[bracket..].ToString());
                TaskCompletionSource<JsonElement>? ack;
                lock (_gate)
                {
                    _acks.Remove(id, out ack);
                }

                ack?.TrySetResult(doc.RootElement[0].Clone());
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _ws.DisposeAsync();
        if (_loop is not null)
        {
            try
            {
                await _loop;
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException or InvalidOperationException)
            {
            }
        }
    }
}
