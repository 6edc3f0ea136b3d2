using StackExchange.Redis;

namespace SocketIO.Redis;

/// <summary>
/// Options of the Redis adapter, the counterpart of <c>@socket.io/redis-adapter</c>'s
/// <c>createAdapter(pub, sub, { key, requestsTimeout, publishOnSpecificResponseChannel })</c>.
/// </summary>
public sealed class RedisAdapterOptions
{
    /// <summary>A StackExchange.Redis configuration string ("127.0.0.1:6379,..."); ignored when <see cref="Connection"/> is set or one is registered in DI.</summary>
    public string? Configuration { get; set; }

    /// <summary>An existing connection to use (else one from DI, else one made from <see cref="Configuration"/>).</summary>
    public IConnectionMultiplexer? Connection { get; set; }

    /// <summary>The channel prefix (Node's <c>key</c>); the same on every node of a cluster.</summary>
    public string Key { get; set; } = "socket.io";

    /// <summary>How long a request to the other nodes (fetch sockets, all rooms, server-side emit) waits for answers.</summary>
    public TimeSpan RequestsTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Answer on the requester's own response channel (<c>&lt;key&gt;-response#&lt;nsp&gt;#&lt;uid&gt;#</c>) instead of the common one.</summary>
    public bool PublishOnSpecificResponseChannel { get; set; }

    /// <summary>Throws when a value is out of range (called at start-up).</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Key) || Key.Contains('#', StringComparison.Ordinal))
        {
            throw new InvalidOperationException("SocketIO Redis adapter: Key must be non-empty and must not contain '#'.");
        }

        if (RequestsTimeout <= TimeSpan.Zero || RequestsTimeout > TimeSpan.FromMinutes(10))
        {
            throw new InvalidOperationException($"SocketIO Redis adapter: RequestsTimeout must be between 0 and 10 minutes (got {RequestsTimeout}).");
        }
    }
}
