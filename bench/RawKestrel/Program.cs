// The ceiling of the end-to-end benchmark (bench/run.sh): plain ASP.NET Core WebSockets on
// Kestrel, no Engine.IO / Socket.IO library. It accepts the same client handshake minimally
// (sends the Engine.IO open packet, answers the /builder namespace connect, `join-project` with
// `project-joined` and the ack) so the same load client works, and a burst encodes each event
// ONCE into a byte[] and hands that same array to every connection of the room.
// Usage: dotnet run -c Release --project bench/RawKestrel -- --port N [--connection-level]
//   --connection-level: WebSocket upgrades are answered by a Kestrel connection middleware that
//   parses the request head itself (no HTTP/1.1 connection, HttpContext or middleware pipeline per
//   WebSocket), to measure what Kestrel's HTTP layer costs per connection (connect rate, memory).
using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;

var port = 3300;
for (var i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--port")
    {
        port = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
    }
}

var connectionLevel = args.Contains("--connection-level");

var builder = WebApplication.CreateSlimBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
var rooms = new ConcurrentDictionary<string, Room>(StringComparer.Ordinal);
var connections = 0;
if (connectionLevel)
{
    builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Use(next => async connection =>
    {
        var input = connection.Transport.Input;
        var read = await input.ReadAsync(connection.ConnectionClosed);
        var key = ConnectionLevel.WebSocketKey(read.Buffer, out var headEnd);
        if (key is null)
        {
            // not a WebSocket upgrade: Kestrel's HTTP/1.1 handles it, from the same bytes
            input.AdvanceTo(read.Buffer.Start, read.Buffer.Start);
            await next(connection);
            return;
        }

        input.AdvanceTo(headEnd);
        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {ConnectionLevel.AcceptKey(key)}\r\n\r\n"));
        using var ws = WebSocket.CreateFromStream(new DuplexPipeStream(connection.Transport), new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        await RunAsync(ws, connection.ConnectionClosed);
    })));
}

var app = builder.Build();
app.UseWebSockets();

app.Map("/socket.io/", async (HttpContext http) =>
{
    if (!http.WebSockets.IsWebSocketRequest)
    {
        http.Response.StatusCode = 400;
        return;
    }

    using var ws = await http.WebSockets.AcceptWebSocketAsync();
    await RunAsync(ws, http.RequestAborted);
});

async Task RunAsync(WebSocket ws, CancellationToken aborted)
{
    var conn = new Conn(ws);
    Interlocked.Increment(ref connections);
    var writer = conn.RunWriterAsync();
    var sid = Guid.NewGuid().ToString("N")[..20];
    conn.Send(Encoding.UTF8.GetBytes($"0{{\"sid\":\"{sid}\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}}"));
    var joined = new List<Room>();
    try
    {
        while (ws.State == WebSocketState.Open)
        {
            // wait for the next message without holding a buffer (idle connections hold none)
            var peek = await ws.ReceiveAsync(Memory<byte>.Empty, aborted);
            if (peek.MessageType == WebSocketMessageType.Close)
            {
                break;
            }

            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(4096);
            var length = 0;
            var r = peek;
            while (!r.EndOfMessage && length < buffer.Length)
            {
                r = await ws.ReceiveAsync(buffer.AsMemory(length), aborted);
                length += r.Count;
            }

            var text = Encoding.UTF8.GetString(buffer, 0, length);
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
            if (r.MessageType == WebSocketMessageType.Close)
            {
                break;
            }

            if (text.StartsWith("40/builder", StringComparison.Ordinal))
            {
                conn.Send(Encoding.UTF8.GetBytes($"40/builder,{{\"sid\":\"{Guid.NewGuid().ToString("N")[..20]}\"}}"));
            }
            else if (text.StartsWith("42/builder,", StringComparison.Ordinal) && text.Contains("\"join-project\"", StringComparison.Ordinal))
            {
                // 42/builder,<ackId>["join-project",{"projectId":"P"}]
                var rest = text.AsSpan("42/builder,".Length);
                var bracket = rest.IndexOf('[');
                var ackId = bracket > 0 ? rest[..bracket].ToString() : "";
                var key = "\"projectId\":\"";
                var at = text.IndexOf(key, StringComparison.Ordinal);
                if (at < 0)
                {
                    continue;
                }

                var start = at + key.Length;
                var end = text.IndexOf('"', start);
                var projectId = text[start..end];
                var room = rooms.GetOrAdd("project:" + projectId, _ => new Room());
                room.Add(conn);
                joined.Add(room);
                conn.Send(Encoding.UTF8.GetBytes($"42/builder,[\"project-joined\",{{\"projectId\":\"{projectId}\",\"members\":{room.Count},\"seq\":0}}]"));
                if (ackId.Length > 0)
                {
                    conn.Send(Encoding.UTF8.GetBytes($"43/builder,{ackId}[{{\"ok\":true,\"projectId\":\"{projectId}\"}}]"));
                }
            }
            else if (text == "2")
            {
                conn.Send("3"u8.ToArray());
            }
        }
    }
    catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException)
    {
    }
    finally
    {
        foreach (var room in joined)
        {
            room.Remove(conn);
        }

        conn.Complete();
        Interlocked.Decrement(ref connections);
    }

    await writer;
}

app.MapGet("/bench/stats", () => Results.Text(
    $"{{\"server\":\"raw\",\"rss\":{Rss()},\"gcTotalMemory\":{GC.GetTotalMemory(false)},\"clients\":{Volatile.Read(ref connections)}}}", "application/json"));

app.MapGet("/bench/burst", async (HttpContext http) =>
{
    var q = http.Request.Query;
    var project = q["project"].FirstOrDefault() ?? "p0";
    var count = Math.Clamp(Num(q["count"].FirstOrDefault(), 200), 0, 10_000_000);
    var rate = Math.Max(0, Num(q["rate"].FirstOrDefault(), 0));
    var batch = Math.Max(1, Num(q["batch"].FirstOrDefault(), 1));
    var burstId = q["burstId"].FirstOrDefault() ?? "0";
    var room = rooms.GetOrAdd("project:" + project, _ => new Room());
    var t0 = NowMs();
    var seq = 0;
    if (rate == 0)
    {
        while (seq < count)
        {
            for (var i = 0; i < batch && seq < count; i++, seq++)
            {
                room.Broadcast(Frame(seq, burstId));
            }

            if (seq < count)
            {
                await Task.Yield();
            }
        }
    }
    else
    {
        while (seq < count)
        {
            var wait = t0 + (seq * 1000.0 / rate) - NowMs();
            if (wait > 0.5)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(wait), http.RequestAborted);
            }

            var now = NowMs();
            while (seq < count && t0 + (seq * 1000.0 / rate) <= now + 0.5)
            {
                room.Broadcast(Frame(seq, burstId));
                seq++;
            }
        }
    }

    return Results.Text(FormattableString.Invariant($"{{\"server\":\"raw\",\"count\":{count},\"elapsedMs\":{NowMs() - t0}}}"), "application/json");
});

app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"RawKestrel listening on 127.0.0.1:{port}"));
app.Run();

static byte[] Frame(int seq, string burstId)
{
    var sentAt = NowMs();
    return Encoding.UTF8.GetBytes(FormattableString.Invariant(
        $"42/builder,[\"agent:status:update\",{{\"type\":\"agent:status:update\",\"timestamp\":{(long)sentAt},\"payload\":{{\"agentId\":\"agent-uuid\",\"agentType\":\"ui\",\"status\":\"working\",\"currentTask\":\"Generating UI layout for Dashboard page\",\"progress\":65,\"message\":\"Selected 5 components from library\",\"seq\":{seq},\"burstId\":\"{burstId}\",\"sentAt\":{sentAt:R}}}}}]"));
}

static double NowMs() => (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / (double)TimeSpan.TicksPerMillisecond;

static int Num(string? s, int fallback) => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;

static long Rss()
{
    foreach (var line in File.ReadLines("/proc/self/status"))
    {
        if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
        {
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
    }

    return Environment.WorkingSet;
}

/// <summary>A room: a copy-on-write array of connections, so a broadcast takes no lock.</summary>
internal sealed class Room
{
    private readonly Lock _gate = new();
    private Conn[] _members = [];

    public int Count => Volatile.Read(ref _members).Length;

    public void Add(Conn conn)
    {
        lock (_gate)
        {
            _members = [.. _members, conn];
        }
    }

    public void Remove(Conn conn)
    {
        lock (_gate)
        {
            _members = Array.FindAll(_members, c => c != conn);
        }
    }

    public void Broadcast(byte[] frame)
    {
        foreach (var conn in Volatile.Read(ref _members))
        {
            conn.Send(frame);
        }
    }
}

/// <summary>One connection: an unbounded queue of frames and one writer loop.</summary>
internal sealed class Conn(WebSocket ws)
{
    private readonly Channel<byte[]> _queue = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });

    public void Send(byte[] frame) => _queue.Writer.TryWrite(frame);

    public void Complete() => _queue.Writer.TryComplete();

    public async Task RunWriterAsync()
    {
        await Task.Yield();
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var frame))
                {
                    await ws.SendAsync(frame, WebSocketMessageType.Text, true, CancellationToken.None);
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
    }
}

/// <summary>The minimal request-head check of the connection-level mode.</summary>
internal static class ConnectionLevel
{
    /// <summary>The Sec-WebSocket-Key of a complete "GET ... Upgrade: websocket" head, else null.</summary>
    public static string? WebSocketKey(ReadOnlySequence<byte> buffer, out SequencePosition headEnd)
    {
        headEnd = buffer.Start;
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> head, "\r\n\r\n"u8, advancePastDelimiter: true))
        {
            return null;
        }

        headEnd = reader.Position;
        var text = Encoding.ASCII.GetString(head.IsSingleSegment ? head.FirstSpan : head.ToArray());
        if (!text.StartsWith("GET ", StringComparison.Ordinal) || !text.Contains("websocket", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        foreach (var line in text.Split("\r\n"))
        {
            if (line.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))
            {
                return line["Sec-WebSocket-Key:".Length..].Trim();
            }
        }

        return null;
    }

    public static string AcceptKey(string key) =>
        Convert.ToBase64String(System.Security.Cryptography.SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
}

/// <summary>A connection's duplex pipe as one stream.</summary>
internal sealed class DuplexPipeStream(System.IO.Pipelines.IDuplexPipe pipe) : Stream
{
    private readonly Stream _in = pipe.Input.AsStream(leaveOpen: true);
    private readonly Stream _out = pipe.Output.AsStream(leaveOpen: true);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _in.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _in.ReadAsync(buffer, offset, count, cancellationToken);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _out.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _out.WriteAsync(buffer, offset, count, cancellationToken);

    public override Task FlushAsync(CancellationToken cancellationToken) => _out.FlushAsync(cancellationToken);

    public override void Flush() => _out.Flush();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
