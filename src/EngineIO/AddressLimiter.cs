using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace EngineIO;

/// <summary>
/// <see cref="EngineIOOptions.MaxConnectionsPerAddress"/> and
/// <see cref="EngineIOOptions.MaxHandshakesPerAddress"/>: per client address (IPv6 by /64, the
/// block one host usually gets), the sessions open and those still handshaking, checked and
/// counted in one step when a handshake is admitted. A session is handshaking from its handshake
/// request until the layer above calls <see cref="EngineIOServer.MarkEstablished"/> (Socket.IO: a
/// namespace is joined) or it closes.
/// </summary>
internal sealed class AddressLimiter(int maxConnections, int maxHandshakes)
{
    public static readonly EngineError TooManyConnections = new(6, "Too many connections from this address", 429);
    public static readonly EngineError TooManyHandshakes = new(6, "Too many handshakes in progress from this address", 429);

    private readonly Dictionary<IPAddress, Counts> _byAddress = [];
    private readonly HashSet<string> _handshaking = new(StringComparer.Ordinal); // session ids not yet established

    /// <summary>Addresses with a session or handshake counted (tests).</summary>
    public int Addresses
    {
        get
        {
            lock (_byAddress)
            {
                return _byAddress.Count;
            }
        }
    }

    public static AddressLimiter? For(EngineIOOptions options) =>
        options.MaxConnectionsPerAddress > 0 || options.MaxHandshakesPerAddress > 0
            ? new AddressLimiter(options.MaxConnectionsPerAddress, options.MaxHandshakesPerAddress)
            : null;

    /// <summary>Admits a handshake from <paramref name="address"/> (counted as a connection and a handshake), or names the limit it exceeds.</summary>
    public EngineError? TryAdmit(IPAddress? address)
    {
        if (Key(address) is not { } key)
        {
            return null;
        }

        lock (_byAddress)
        {
            var counts = _byAddress.GetValueOrDefault(key);
            if (maxConnections > 0 && counts.Connections >= maxConnections)
            {
                return TooManyConnections;
            }

            if (maxHandshakes > 0 && counts.Handshakes >= maxHandshakes)
            {
                return TooManyHandshakes;
            }

            _byAddress[key] = new Counts(counts.Connections + 1, counts.Handshakes + 1);
            return null;
        }
    }

    /// <summary>An admitted handshake ended without a session: its counts are given back.</summary>
    public void Abandon(IPAddress? address) => Change(address, -1, -1);

    /// <summary>An admitted handshake opened <paramref name="sessionId"/>: it is handshaking until established or closed.</summary>
    public void Opened(string sessionId)
    {
        lock (_byAddress)
        {
            _handshaking.Add(sessionId);
        }
    }

    public void Established(string sessionId, IPAddress? address)
    {
        lock (_byAddress)
        {
            if (_handshaking.Remove(sessionId))
            {
                ChangeLocked(address, 0, -1);
            }
        }
    }

    public void Closed(string sessionId, IPAddress? address)
    {
        lock (_byAddress)
        {
            ChangeLocked(address, -1, _handshaking.Remove(sessionId) ? -1 : 0);
        }
    }

    private void Change(IPAddress? address, int connections, int handshakes)
    {
        lock (_byAddress)
        {
            ChangeLocked(address, connections, handshakes);
        }
    }

    private void ChangeLocked(IPAddress? address, int connections, int handshakes)
    {
        if (Key(address) is not { } key || !_byAddress.TryGetValue(key, out var counts))
        {
            return;
        }

        counts = new Counts(counts.Connections + connections, counts.Handshakes + handshakes);
        if (counts.Connections <= 0 && counts.Handshakes <= 0)
        {
            _byAddress.Remove(key);
        }
        else
        {
            _byAddress[key] = counts;
        }
    }

    /// <summary>The address counted: IPv4 (mapped or not) as is, IPv6 by its /64 prefix; null (no address) is not limited.</summary>
    private static IPAddress? Key(IPAddress? address)
    {
        if (address is null)
        {
            return null;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    /// <summary>The refusal as the fast path writes it: the status, and the JSON body of the HTTP path's errors.</summary>
    public static byte[] RawResponse(EngineError error)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new EngineErrorBody(error.Code, error.Message), EngineJsonContext.Default.EngineErrorBody);
        var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {error.Status} Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n");
        return [.. head, .. body];
    }

    private readonly record struct Counts(int Connections, int Handshakes);
}
