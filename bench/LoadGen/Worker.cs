using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace LoadGen;

internal enum ConnState
{
    Queued,
    TcpConnecting,
    HttpUpgrade,
    WaitOpen,
    WaitConnect,
    Joining,
    Ready,
    Failed,
    Closed,
}

/// <summary>
/// One client connection: Engine.IO v4 over WebSocket, Socket.IO v5, namespace /builder; Socket.IO
/// packets as JSON text (the default parser) or, with <see cref="Engine.MessagePack"/>, as binary
/// messages in the format of npm's socket.io-msgpack-parser 3.x (Engine.IO packets stay text).
/// </summary>
internal sealed class Conn
{
    public required int Index { get; init; }
    public required string Auth { get; init; }
    public required string[] Rooms { get; init; }
    public int Fd = -1;
    public int Slot = -1;
    public ConnState State;
    public byte[]? Leftover;
    public int LeftoverLen;
    public byte[]? Frag;
    public int FragLen;
    public bool FragBinary;
    public byte[]? Out;
    public int OutLen;
    public int PendingAcks;
    public int NextAckId;
    public long StartTs;
    public long ReadyTs;
    public string? Error;

    // events of the current burst
    public int CountBurst = -1;
    public int Received;
    public int LastSeq = -1;
    public int Anomalies;
}

/// <summary>
/// A worker thread: its own epoll instance and connections. Each ready socket is read with one
/// read() into a 1 MiB buffer and every complete WebSocket frame in it is handled in place.
/// </summary>
internal sealed unsafe class Worker : IDisposable
{
    private const int BufSize = 1 << 20;
    private const int MaxLeftover = 256 * 1024;
    private static readonly byte[] s_upgradeTail = "\r\n\r\n"u8.ToArray();
    private readonly Engine _engine;
    private readonly int _ep;
    private readonly int _wake;
    private readonly ConcurrentQueue<Action> _commands = new();
    private readonly List<Conn?> _slots = [];
    private readonly byte[] _buf = GC.AllocateArray<byte>(BufSize, pinned: true);
    private readonly byte[] _out = GC.AllocateArray<byte>(64 * 1024, pinned: true);
    private readonly Thread _thread;
    private readonly Random _rng;
    private readonly bool _msgpack;
    private static readonly byte[] s_pong = MsgPackWriter.Packet(2, "/builder", w => w.Array(1).Str("pong"), null);
    private volatile bool _stop;

    // per-burst statistics, owned by this thread, read by the orchestrator when traffic is done
    public readonly Histogram Latency = new();
    public long StatsBurst = -1;
    public long BurstReceived;
    public long BurstLastTs;
    public long Stale;
    public long Anomalies;
    public long Closed;

    public Worker(Engine engine, int id)
    {
        _engine = engine;
        _msgpack = engine.MessagePack;
        _rng = new Random(id + 1);
        _ep = Native.epoll_create1(Native.EPOLL_CLOEXEC);
        _wake = Native.eventfd(0, Native.EFD_NONBLOCK | Native.EFD_CLOEXEC);
        if (_ep < 0 || _wake < 0)
        {
            throw new InvalidOperationException($"epoll_create1/eventfd failed: errno {Native.Errno}");
        }

        var ev = new Native.EpollEvent { Events = Native.EPOLLIN, Data = ulong.MaxValue };
        Native.epoll_ctl(_ep, Native.EPOLL_CTL_ADD, _wake, &ev);
        _thread = new Thread(Run) { IsBackground = true, Name = $"loadgen-{id}" };
    }

    public void Start() => _thread.Start();

    public void Post(Action command)
    {
        _commands.Enqueue(command);
        ulong one = 1;
        Native.write(_wake, (byte*)&one, 8);
    }

    public void Stop()
    {
        _stop = true;
        Post(() => { });
        _thread.Join(TimeSpan.FromSeconds(5));
    }

    public void Dispose()
    {
        Native.close(_ep);
        Native.close(_wake);
    }

    /// <summary>Runs on this thread: opens the socket and starts the non-blocking connect.</summary>
    public void Open(Conn c)
    {
        c.StartTs = Stopwatch.GetTimestamp();
        var fd = Native.socket(Native.AF_INET, Native.SOCK_STREAM | Native.SOCK_NONBLOCK | Native.SOCK_CLOEXEC, 0);
        if (fd < 0)
        {
            Fail(c, $"socket() errno {Native.Errno}");
            return;
        }

        c.Fd = fd;
        int one = 1;
        Native.setsockopt(fd, Native.IPPROTO_TCP, Native.TCP_NODELAY, &one, 4);
        if (_engine.SourceAddresses > 1)
        {
            var src = Native.Addr(0x7F000001u + (uint)(c.Index % _engine.SourceAddresses), 0);
            Native.bind(fd, &src, 16);
        }

        var addr = Native.Addr(_engine.TargetIp, _engine.PortOf(c));
        if (Native.connect(fd, &addr, 16) < 0 && Native.Errno != Native.EINPROGRESS)
        {
            Fail(c, $"connect() errno {Native.Errno}");
            return;
        }

        c.Slot = _slots.Count;
        _slots.Add(c);
        c.State = ConnState.TcpConnecting;
        var ev = new Native.EpollEvent { Events = Native.EPOLLIN | Native.EPOLLOUT, Data = (ulong)c.Slot };
        Native.epoll_ctl(_ep, Native.EPOLL_CTL_ADD, fd, &ev);
    }

    /// <summary>Runs on this thread: joins one more room (counted in PendingAcks).</summary>
    public void Join(Conn c, string room)
    {
        if (c.State is ConnState.Failed or ConnState.Closed)
        {
            return;
        }

        c.PendingAcks++;
        if (_msgpack)
        {
            SendFrame(c, 0x2, MsgPackWriter.Packet(2, "/builder", w => w.Array(2).Str("join-project").Map(1).Str("projectId").Str(room), c.NextAckId++));
            return;
        }

        SendText(c, $"42/builder,{c.NextAckId++}[\"join-project\",{{\"projectId\":\"{room}\"}}]");
    }

    public IEnumerable<Conn> Connections
    {
        get
        {
            foreach (var c in _slots)
            {
                if (c is not null)
                {
                    yield return c;
                }
            }
        }
    }

    /// <summary>Runs on this thread: closes every socket with RST (no TIME_WAIT left behind).</summary>
    public void CloseAll()
    {
        var linger = new Native.Linger { OnOff = 1, Seconds = 0 };
        for (var i = 0; i < _slots.Count; i++)
        {
            if (_slots[i] is { Fd: >= 0 } c)
            {
                Native.setsockopt(c.Fd, Native.SOL_SOCKET, Native.SO_LINGER, &linger, sizeof(Native.Linger));
                Native.epoll_ctl(_ep, Native.EPOLL_CTL_DEL, c.Fd, null);
                Native.close(c.Fd);
                c.Fd = -1;
                if (c.State != ConnState.Failed)
                {
                    c.State = ConnState.Closed;
                }
            }
        }
    }

    private void Run()
    {
        const int MaxEvents = 512;
        var events = stackalloc Native.EpollEvent[MaxEvents];
        while (!_stop)
        {
            while (_commands.TryDequeue(out var command))
            {
                command();
            }

            var n = Native.epoll_wait(_ep, events, MaxEvents, 50);
            if (n < 0)
            {
                if (Native.Errno == Native.EINTR)
                {
                    continue;
                }

                _engine.Fatal($"epoll_wait errno {Native.Errno}");
                return;
            }

            for (var i = 0; i < n; i++)
            {
                var data = events[i].Data;
                if (data == ulong.MaxValue)
                {
                    ulong drained;
                    Native.read(_wake, (byte*)&drained, 8);
                    continue;
                }

                var c = _slots[(int)data];
                if (c is null || c.Fd < 0)
                {
                    continue;
                }

                var flags = events[i].Events;
                if (c.State == ConnState.TcpConnecting)
                {
                    if ((flags & (Native.EPOLLOUT | Native.EPOLLERR | Native.EPOLLHUP)) != 0)
                    {
                        Connected(c);
                    }

                    continue;
                }

                if ((flags & Native.EPOLLOUT) != 0)
                {
                    Flush(c);
                }

                if ((flags & (Native.EPOLLIN | Native.EPOLLERR | Native.EPOLLHUP)) != 0)
                {
                    ReadReady(c);
                }
            }
        }
    }

    private void Connected(Conn c)
    {
        int err = 0;
        var len = 4;
        Native.getsockopt(c.Fd, Native.SOL_SOCKET, Native.SO_ERROR, &err, &len);
        if (err != 0)
        {
            Fail(c, $"connect errno {err}");
            return;
        }

        c.State = ConnState.HttpUpgrade;
        var ev = new Native.EpollEvent { Events = Native.EPOLLIN, Data = (ulong)c.Slot };
        Native.epoll_ctl(_ep, Native.EPOLL_CTL_MOD, c.Fd, &ev);
        var request = $"GET {_engine.Path}?EIO=4&transport=websocket HTTP/1.1\r\nHost: {_engine.HostHeaderOf(c)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        var bytes = Encoding.ASCII.GetBytes(request);
        WriteRaw(c, bytes);
    }

    private void ReadReady(Conn c)
    {
        for (var round = 0; round < 4 && c.Fd >= 0; round++)
        {
            var start = 0;
            if (c.LeftoverLen > 0)
            {
                c.Leftover.AsSpan(0, c.LeftoverLen).CopyTo(_buf);
                start = c.LeftoverLen;
                c.LeftoverLen = 0;
            }

            nint n;
            fixed (byte* p = &_buf[start])
            {
                n = Native.read(c.Fd, p, BufSize - start);
            }

            if (n < 0)
            {
                var errno = Native.Errno;
                if (start > 0)
                {
                    Keep(c, _buf.AsSpan(0, start));
                }

                if (errno is Native.EAGAIN or Native.EINTR)
                {
                    return;
                }

                Fail(c, $"read errno {errno}");
                return;
            }

            if (n == 0)
            {
                if (c.State != ConnState.Failed)
                {
                    Closed++;
                    Fail(c, "closed by server");
                }

                return;
            }

            var now = Stopwatch.GetTimestamp();
            var nowMs = Clock.NowMs();
            var total = start + (int)n;
            var used = Parse(c, _buf.AsSpan(0, total), now, nowMs);
            if (c.Fd < 0)
            {
                return;
            }

            if (used < total)
            {
                if (total - used > MaxLeftover)
                {
                    Fail(c, "frame too large");
                    return;
                }

                Keep(c, _buf.AsSpan(used, total - used));
            }

            if (n < BufSize - start)
            {
                return;
            }
        }
    }

    private static void Keep(Conn c, ReadOnlySpan<byte> bytes)
    {
        if (c.Leftover is null || c.Leftover.Length < bytes.Length)
        {
            c.Leftover = new byte[Math.Max(bytes.Length, 512)];
        }

        bytes.CopyTo(c.Leftover);
        c.LeftoverLen = bytes.Length;
    }

    /// <summary>Handles every complete unit in <paramref name="data"/>; returns the bytes used.</summary>
    private int Parse(Conn c, ReadOnlySpan<byte> data, long now, double nowMs)
    {
        var pos = 0;
        if (c.State == ConnState.HttpUpgrade)
        {
            var end = data.IndexOf(s_upgradeTail);
            if (end < 0)
            {
                return 0;
            }

            if (!data.StartsWith("HTTP/1.1 101"u8))
            {
                Fail(c, "upgrade refused: " + Encoding.ASCII.GetString(data[..Math.Min(end, 80)]));
                return data.Length;
            }

            c.State = ConnState.WaitOpen;
            pos = end + 4;
        }

        while (pos + 2 <= data.Length)
        {
            var b0 = data[pos];
            var b1 = data[pos + 1];
            long len = b1 & 0x7f;
            var header = 2;
            if (len == 126)
            {
                if (pos + 4 > data.Length)
                {
                    break;
                }

                len = (data[pos + 2] << 8) | data[pos + 3];
                header = 4;
            }
            else if (len == 127)
            {
                if (pos + 10 > data.Length)
                {
                    break;
                }

                len = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.Slice(pos + 2, 8));
                header = 10;
            }

            if ((b1 & 0x80) != 0)
            {
                Fail(c, "masked server frame");
                return data.Length;
            }

            if (len > MaxLeftover)
            {
                Fail(c, "frame too large");
                return data.Length;
            }

            if (pos + header + len > data.Length)
            {
                break;
            }

            var payload = data.Slice(pos + header, (int)len);
            pos += header + (int)len;
            var fin = (b0 & 0x80) != 0;
            var opcode = b0 & 0x0f;
            switch (opcode)
            {
                case 0x1 or 0x2 or 0x0:
                    if (!fin || c.FragLen > 0)
                    {
                        // fragmented message: collect until FIN
                        if (c.FragLen == 0 && opcode != 0x0)
                        {
                            c.FragBinary = opcode == 0x2;
                        }

                        c.Frag ??= new byte[4096];
                        if (c.FragLen + payload.Length > c.Frag.Length)
                        {
                            Array.Resize(ref c.Frag, Math.Max(c.Frag.Length * 2, c.FragLen + payload.Length));
                        }

                        payload.CopyTo(c.Frag.AsSpan(c.FragLen));
                        c.FragLen += payload.Length;
                        if (fin)
                        {
                            var whole = c.Frag.AsSpan(0, c.FragLen).ToArray();
                            c.FragLen = 0;
                            if (_msgpack && c.FragBinary)
                            {
                                OnPacket(c, whole, now, nowMs);
                            }
                            else
                            {
                                OnMessage(c, whole, now, nowMs);
                            }
                        }
                    }
                    else if (_msgpack && opcode == 0x2)
                    {
                        OnPacket(c, payload, now, nowMs);
                    }
                    else
                    {
                        OnMessage(c, payload, now, nowMs);
                    }

                    break;
                case 0x8:
                    Closed++;
                    Fail(c, "websocket close from server");
                    return data.Length;
                case 0x9:
                    SendFrame(c, 0xA, payload);
                    break;
                default:
                    break;
            }

            if (c.Fd < 0)
            {
                return data.Length;
            }
        }

        return pos;
    }

    private void OnMessage(Conn c, ReadOnlySpan<byte> m, long now, double nowMs)
    {
        if (m.Length == 0)
        {
            return;
        }

        switch (m[0])
        {
            case (byte)'0':
                if (c.State == ConnState.WaitOpen)
                {
                    c.State = ConnState.WaitConnect;
                    if (_msgpack)
                    {
                        SendFrame(c, 0x2, MsgPackWriter.Packet(0, "/builder", w => w.Json(c.Auth), null));
                    }
                    else
                    {
                        SendText(c, "40/builder," + c.Auth);
                    }
                }

                return;
            case (byte)'2':
                if (m.Length == 1)
                {
                    SendText(c, "3");
                }

                return;
            case (byte)'1':
                Fail(c, "engine.io close");
                return;
            case (byte)'4':
                break;
            default:
                return;
        }

        if (m.Length < 2)
        {
            return;
        }

        var rest = m[2..];
        if (rest.StartsWith("/builder,"u8))
        {
            rest = rest[9..];
        }
        else if (rest.StartsWith("/builder"u8))
        {
            rest = rest[8..];
        }
        else
        {
            return; // another namespace
        }

        switch (m[1])
        {
            case (byte)'2':
                if (rest.StartsWith("[\"agent:status:update\""u8))
                {
                    OnEvent(c, rest, now, nowMs);
                }
                else if (rest.StartsWith("[\"ping\""u8))
                {
                    SendText(c, "42/builder,[\"pong\"]");
                }

                return;
            case (byte)'3':
                OnAck(c, now);
                return;
            case (byte)'0':
                OnConnected(c, now);
                return;
            case (byte)'4':
                Fail(c, "connect_error " + Encoding.UTF8.GetString(rest[..Math.Min(rest.Length, 120)]));
                return;
            case (byte)'1':
                Fail(c, "disconnected by server");
                return;
            default:
                return;
        }
    }

    private void OnAck(Conn c, long now)
    {
        if (c.PendingAcks > 0)
        {
            c.PendingAcks--;
            if (c.PendingAcks == 0 && c.State == ConnState.Joining)
            {
                c.State = ConnState.Ready;
                c.ReadyTs = now;
                _engine.OnReady(c);
            }
        }
    }

    private void OnConnected(Conn c, long now)
    {
        if (c.State == ConnState.WaitConnect)
        {
            c.State = ConnState.Joining;
            foreach (var room in c.Rooms)
            {
                Join(c, room);
            }

            if (c.PendingAcks == 0)
            {
                c.State = ConnState.Ready;
                c.ReadyTs = now;
                _engine.OnReady(c);
            }
        }
    }

    /// <summary>A Socket.IO packet in the socket.io-msgpack-parser format: the map {type, nsp, data?, id?}.</summary>
    private void OnPacket(Conn c, ReadOnlySpan<byte> m, long now, double nowMs)
    {
        try
        {
            var r = new MsgPackReader(m);
            var n = r.TryMap();
            if (n < 0)
            {
                Fail(c, "bad MessagePack packet: not a map");
                return;
            }

            var type = -1.0;
            var nspOk = false;
            var dataAt = -1;
            for (var i = 0; i < n; i++)
            {
                if (!r.TryStr(out var key))
                {
                    r.Skip();
                    r.Skip();
                    continue;
                }

                if (key.SequenceEqual("type"u8))
                {
                    type = r.Number();
                }
                else if (key.SequenceEqual("nsp"u8))
                {
                    if (r.TryStr(out var nsp))
                    {
                        nspOk = nsp.SequenceEqual("/builder"u8);
                    }
                    else
                    {
                        r.Skip();
                    }
                }
                else if (key.SequenceEqual("data"u8))
                {
                    dataAt = r.Pos;
                    r.Skip();
                }
                else
                {
                    r.Skip(); // "id" (an ack id: the server asks none of us) and anything else
                }
            }

            if (!nspOk)
            {
                return; // another namespace
            }

            switch (type)
            {
                case 2:
                    if (dataAt >= 0)
                    {
                        OnEventPacket(c, m[dataAt..], now, nowMs);
                    }

                    return;
                case 3:
                    OnAck(c, now);
                    return;
                case 0:
                    OnConnected(c, now);
                    return;
                case 4:
                    Fail(c, "connect_error " + (dataAt >= 0 ? new MsgPackReader(m[dataAt..]).Describe(120) : "(no data)"));
                    return;
                case 1:
                    Fail(c, "disconnected by server");
                    return;
                default:
                    return;
            }
        }
        catch (FormatException e)
        {
            Fail(c, "bad MessagePack packet: " + e.Message);
        }
    }

    /// <summary>An EVENT's data: the array [name, args...]; agent:status:update is counted, ping answered.</summary>
    private void OnEventPacket(Conn c, ReadOnlySpan<byte> data, long now, double nowMs)
    {
        var r = new MsgPackReader(data);
        var n = r.TryArray();
        if (n < 1 || !r.TryStr(out var name))
        {
            return;
        }

        if (name.SequenceEqual("ping"u8))
        {
            SendFrame(c, 0x2, s_pong);
            return;
        }

        if (!name.SequenceEqual("agent:status:update"u8) || n < 2)
        {
            return;
        }

        // the benchmark fields sit in the event's "payload" map (the gateway's envelope has a
        // top-level "seq" of its own); without one, in the argument itself
        double seq = double.NaN, burst = double.NaN, sentAt = double.NaN;
        ReadFields(ref r, ref seq, ref burst, ref sentAt, 0);
        OnEvent(c, (int)seq, (int)burst, sentAt, now, nowMs);
    }

    /// <summary>Reads seq, burstId and sentAt of the map at the reader, from its "payload" map when it has one.</summary>
    private static void ReadFields(ref MsgPackReader r, ref double seq, ref double burst, ref double sentAt, int depth)
    {
        var n = r.TryMap();
        if (n < 0)
        {
            r.Skip();
            return;
        }

        double s = double.NaN, b = double.NaN, t = double.NaN;
        var hasPayload = false;
        for (var i = 0; i < n; i++)
        {
            if (!r.TryStr(out var key))
            {
                r.Skip();
                r.Skip();
                continue;
            }

            if (key.SequenceEqual("payload"u8) && depth == 0 && r.Peek is (>= 0x80 and <= 0x8f) or 0xde or 0xdf)
            {
                hasPayload = true;
                ReadFields(ref r, ref seq, ref burst, ref sentAt, 1);
            }
            else if (key.SequenceEqual("seq"u8))
            {
                s = r.Number();
            }
            else if (key.SequenceEqual("burstId"u8))
            {
                b = r.Number();
            }
            else if (key.SequenceEqual("sentAt"u8))
            {
                t = r.Number();
            }
            else
            {
                r.Skip();
            }
        }

        if (!hasPayload)
        {
            seq = s;
            burst = b;
            sentAt = t;
        }
    }

    private void OnEvent(Conn c, ReadOnlySpan<byte> m, long now, double nowMs)
    {
        // the benchmark fields sit in the event's "payload" object (the gateway's envelope has
        // a top-level "seq" of its own after it)
        var p = m.IndexOf("\"payload\":"u8);
        var body = p < 0 ? m : m[p..];
        var seq = (int)ReadNumber(body, "\"seq\":"u8);
        var burst = (int)ReadNumber(body, "\"burstId\":"u8);
        var sentAt = ReadNumber(body, "\"sentAt\":"u8);
        OnEvent(c, seq, burst, sentAt, now, nowMs);
    }

    private void OnEvent(Conn c, int seq, int burst, double sentAt, long now, double nowMs)
    {
        if (burst != _engine.CurrentBurst)
        {
            Stale++;
            return;
        }

        if (StatsBurst != burst)
        {
            StatsBurst = burst;
            Latency.Reset();
            BurstReceived = 0;
        }

        if (c.CountBurst != burst)
        {
            c.CountBurst = burst;
            c.Received = 0;
            c.LastSeq = -1;
            c.Anomalies = 0;
        }

        if (seq <= c.LastSeq)
        {
            c.Anomalies++;
            Anomalies++;
        }
        else
        {
            c.Received++;
        }

        c.LastSeq = Math.Max(c.LastSeq, seq);
        if (!double.IsNaN(sentAt))
        {
            Latency.Record((long)((nowMs - sentAt) * 1000));
        }

        BurstLastTs = now;
        Volatile.Write(ref BurstReceived, BurstReceived + 1);
    }

    private static double ReadNumber(ReadOnlySpan<byte> s, ReadOnlySpan<byte> key)
    {
        var at = s.IndexOf(key);
        if (at < 0)
        {
            return double.NaN;
        }

        var v = s[(at + key.Length)..];
        if (v.Length > 0 && v[0] == (byte)'"')
        {
            v = v[1..];
        }

        return Utf8Parser.TryParse(v, out double d, out _) ? d : double.NaN;
    }

    public void SendText(Conn c, string text)
    {
        Span<byte> bytes = stackalloc byte[Encoding.UTF8.GetMaxByteCount(text.Length)];
        var n = Encoding.UTF8.GetBytes(text, bytes);
        SendFrame(c, 0x1, bytes[..n]);
    }

    /// <summary>A masked client frame (RFC 6455 5.3).</summary>
    private void SendFrame(Conn c, int opcode, ReadOnlySpan<byte> payload)
    {
        var frame = payload.Length + 14 <= _out.Length ? _out.AsSpan() : new byte[payload.Length + 14];
        frame[0] = (byte)(0x80 | opcode);
        var h = 2;
        if (payload.Length < 126)
        {
            frame[1] = (byte)(0x80 | payload.Length);
        }
        else if (payload.Length <= ushort.MaxValue)
        {
            frame[1] = 0x80 | 126;
            frame[2] = (byte)(payload.Length >> 8);
            frame[3] = (byte)payload.Length;
            h = 4;
        }
        else
        {
            frame[1] = 0x80 | 127;
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64BigEndian(frame[2..], (ulong)payload.Length);
            h = 10;
        }

        Span<byte> key = stackalloc byte[4];
        _rng.NextBytes(key);
        key.CopyTo(frame[h..]);
        h += 4;
        for (var i = 0; i < payload.Length; i++)
        {
            frame[h + i] = (byte)(payload[i] ^ key[i & 3]);
        }

        WriteRaw(c, frame[..(h + payload.Length)]);
    }

    private void WriteRaw(Conn c, ReadOnlySpan<byte> bytes)
    {
        if (c.Fd < 0)
        {
            return;
        }

        if (c.OutLen > 0)
        {
            Append(c, bytes);
            return;
        }

        nint n;
        fixed (byte* p = bytes)
        {
            n = Native.write(c.Fd, p, bytes.Length);
        }

        if (n < 0)
        {
            var errno = Native.Errno;
            if (errno is not (Native.EAGAIN or Native.EINTR))
            {
                Fail(c, $"write errno {errno}");
                return;
            }

            n = 0;
        }

        if (n < bytes.Length)
        {
            Append(c, bytes[(int)n..]);
            var ev = new Native.EpollEvent { Events = Native.EPOLLIN | Native.EPOLLOUT, Data = (ulong)c.Slot };
            Native.epoll_ctl(_ep, Native.EPOLL_CTL_MOD, c.Fd, &ev);
        }
    }

    private static void Append(Conn c, ReadOnlySpan<byte> bytes)
    {
        c.Out ??= new byte[Math.Max(4096, bytes.Length)];
        if (c.OutLen + bytes.Length > c.Out.Length)
        {
            Array.Resize(ref c.Out, Math.Max(c.Out.Length * 2, c.OutLen + bytes.Length));
        }

        bytes.CopyTo(c.Out.AsSpan(c.OutLen));
        c.OutLen += bytes.Length;
    }

    private void Flush(Conn c)
    {
        if (c.OutLen == 0 || c.Out is null)
        {
            return;
        }

        nint n;
        fixed (byte* p = c.Out)
        {
            n = Native.write(c.Fd, p, c.OutLen);
        }

        if (n < 0)
        {
            var errno = Native.Errno;
            if (errno is not (Native.EAGAIN or Native.EINTR))
            {
                Fail(c, $"write errno {errno}");
            }

            return;
        }

        c.Out.AsSpan((int)n, c.OutLen - (int)n).CopyTo(c.Out);
        c.OutLen -= (int)n;
        if (c.OutLen == 0)
        {
            var ev = new Native.EpollEvent { Events = Native.EPOLLIN, Data = (ulong)c.Slot };
            Native.epoll_ctl(_ep, Native.EPOLL_CTL_MOD, c.Fd, &ev);
        }
    }

    private void Fail(Conn c, string error)
    {
        var wasPending = c.State is not (ConnState.Ready or ConnState.Failed or ConnState.Closed);
        c.Error ??= error;
        c.State = ConnState.Failed;
        if (c.Fd >= 0)
        {
            Native.epoll_ctl(_ep, Native.EPOLL_CTL_DEL, c.Fd, null);
            Native.close(c.Fd);
            c.Fd = -1;
        }

        _engine.OnFailed(c, wasPending);
    }
}
