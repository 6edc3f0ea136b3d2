using System.Text.Json;
using SocketIO.Parser;

namespace SocketIO;

/// <summary>
/// Arguments received from a client (an event's arguments or an acknowledgement's), with their
/// binary attachments. Arguments are JSON; binary values read as byte[] through
/// <see cref="GetArg{T}"/>, <see cref="GetBinary"/> or <see cref="ToObjects"/>.
/// </summary>
public class SocketArgs
{
    private readonly JsonElement _array;
    private readonly int _skip;
    private readonly JsonSerializerOptions _options;

    internal SocketArgs(JsonElement array, int skip, IReadOnlyList<ReadOnlyMemory<byte>> attachments, JsonSerializerOptions options)
    {
        _array = array;
        _skip = skip;
        Attachments = attachments;
        _options = options;
        Count = array.ValueKind == JsonValueKind.Array ? Math.Max(0, array.GetArrayLength() - skip) : 0;
    }

    /// <summary>Number of arguments.</summary>
    public int Count { get; }

    /// <summary>The binary attachments in placeholder order.</summary>
    public IReadOnlyList<ReadOnlyMemory<byte>> Attachments { get; }

    /// <summary>The raw JSON of argument <paramref name="index"/> (binary values are placeholders).</summary>
    public JsonElement this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            return _array[index + _skip];
        }
    }

    /// <summary>Deserializes argument <paramref name="index"/>; byte[] members receive the attachments.</summary>
    public T? GetArg<T>(int index)
    {
        var element = this[index];
        var previous = BinaryScope.Reading;
        BinaryScope.Reading = Attachments;
        try
        {
            return element.Deserialize<T>(_options);
        }
        finally
        {
            BinaryScope.Reading = previous;
        }
    }

    /// <summary>Tries to deserialize argument <paramref name="index"/>; false if missing or of another shape.</summary>
    public bool TryGetArg<T>(int index, out T? value)
    {
        value = default;
        if (index < 0 || index >= Count)
        {
            return false;
        }

        try
        {
            value = GetArg<T>(index);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
        catch (NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>The bytes of a binary argument.</summary>
    public byte[] GetBinary(int index) =>
        BinaryScope.TryGetPlaceholder(this[index], out var num) && num < Attachments.Count
            ? Attachments[num].ToArray()
            : throw new InvalidOperationException($"Argument {index} is not binary.");

    /// <summary>
    /// The arguments as values to send on: JSON parts stay <see cref="JsonElement"/>, binary
    /// parts become byte[] wherever they are nested.
    /// </summary>
    public object?[] ToObjects()
    {
        var result = new object?[Count];
        for (var i = 0; i < Count; i++)
        {
            result[i] = Materialize(this[i]);
        }

        return result;
    }

    private object? Materialize(JsonElement element)
    {
        if (Attachments.Count == 0 || !ContainsPlaceholder(element))
        {
            return element;
        }

        if (BinaryScope.TryGetPlaceholder(element, out var num) && num < Attachments.Count)
        {
            return Attachments[num].ToArray();
        }

        if (element.ValueKind == JsonValueKind.Array)
        {
            var list = new List<object?>(element.GetArrayLength());
            foreach (var item in element.EnumerateArray())
            {
                list.Add(Materialize(item));
            }

            return list;
        }

        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            map[property.Name] = Materialize(property.Value);
        }

        return map;
    }

    private static bool ContainsPlaceholder(JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                if (BinaryScope.TryGetPlaceholder(element, out _))
                {
                    return true;
                }

                foreach (var property in element.EnumerateObject())
                {
                    if (ContainsPlaceholder(property.Value))
                    {
                        return true;
                    }
                }

                return false;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    if (ContainsPlaceholder(item))
                    {
                        return true;
                    }
                }

                return false;
            default:
                return false;
        }
    }
}

/// <summary>An event received from a client.</summary>
public sealed class SocketEventContext : SocketArgs
{
    private readonly long? _ackId;
    private int _acked;

    internal SocketEventContext(SocketIOSocket socket, string eventName, JsonElement array, IReadOnlyList<ReadOnlyMemory<byte>> attachments, long? ackId, JsonSerializerOptions options)
        : base(array, 1, attachments, options)
    {
        Socket = socket;
        EventName = eventName;
        _ackId = ackId;
    }

    /// <summary>The socket that received the event.</summary>
    public SocketIOSocket Socket { get; }

    /// <summary>The event's name.</summary>
    public string EventName { get; }

    /// <summary>Whether the client asked for an acknowledgement.</summary>
    public bool HasAck => _ackId is not null;

    /// <summary>Acknowledges the event with the given arguments; later calls are ignored.</summary>
    public void Ack(params object?[] args)
    {
        if (_ackId is not { } id || Interlocked.Exchange(ref _acked, 1) != 0)
        {
            return;
        }

        Socket.SendAck(id, args);
    }
}

/// <summary>An acknowledgement received from a client.</summary>
public sealed class AckResponse : SocketArgs
{
    internal AckResponse(string socketId, JsonElement array, IReadOnlyList<ReadOnlyMemory<byte>> attachments, JsonSerializerOptions options)
        : base(array, 0, attachments, options)
    {
        SocketId = socketId;
    }

    /// <summary>The socket that acknowledged.</summary>
    public string SocketId { get; }

    /// <summary>
    /// An acknowledgement that came from a socket on another node (through a cluster adapter):
    /// <paramref name="array"/> holds the ack's arguments, binary values as placeholders into <paramref name="attachments"/>.
    /// </summary>
    public static AckResponse FromRemote(string socketId, JsonElement array, IReadOnlyList<ReadOnlyMemory<byte>> attachments, JsonSerializerOptions options) =>
        new(socketId, array, attachments, options);
}

/// <summary>A connection refused by middleware: the client's connect_error gets message and data.</summary>
public sealed class ConnectRejectedException : Exception
{
    /// <summary>Refuses with "Connection refused".</summary>
    public ConnectRejectedException()
        : this("Connection refused")
    {
    }

    /// <summary>Refuses with <paramref name="message"/>.</summary>
    public ConnectRejectedException(string message)
        : base(message)
    {
    }

    /// <summary>Refuses with <paramref name="message"/>.</summary>
    public ConnectRejectedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Refuses with <paramref name="message"/> and <paramref name="data"/> as the connect_error's data.</summary>
    public ConnectRejectedException(string message, object? data)
        : base(message)
    {
        ErrorData = data;
    }

    /// <summary>Sent as <c>err.data</c>.</summary>
    public object? ErrorData { get; }
}
