using System.Text.Json;
using System.Text.Json.Serialization;

namespace SocketIO.Parser;

/// <summary>
/// While a packet is being encoded or decoded, binary values become placeholders
/// <c>{"_placeholder":true,"num":n}</c> with their bytes carried as attachments.
/// </summary>
internal static class BinaryScope
{
    [ThreadStatic]
    private static List<ReadOnlyMemory<byte>>? t_writing;

    [ThreadStatic]
    private static IReadOnlyList<ReadOnlyMemory<byte>>? t_reading;

    public static List<ReadOnlyMemory<byte>>? Writing
    {
        get => t_writing;
        set => t_writing = value;
    }

    public static IReadOnlyList<ReadOnlyMemory<byte>>? Reading
    {
        get => t_reading;
        set => t_reading = value;
    }

    public static void WritePlaceholder(Utf8JsonWriter writer, ReadOnlyMemory<byte> data)
    {
        var list = Writing;
        if (list is null)
        {
            writer.WriteBase64StringValue(data.Span);
            return;
        }

        writer.WriteStartObject();
        writer.WriteBoolean("_placeholder", true);
        writer.WriteNumber("num", list.Count);
        writer.WriteEndObject();
        list.Add(data);
    }

    public static ReadOnlyMemory<byte> ReadPlaceholder(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.GetBytesFromBase64();
        }

        using var doc = JsonDocument.ParseValue(ref reader);
        if (TryGetPlaceholder(doc.RootElement, out var num) && Reading is { } attachments && num < attachments.Count)
        {
            return attachments[num];
        }

        throw new JsonException("Expected a binary placeholder or a base64 string.");
    }

    public static bool TryGetPlaceholder(JsonElement element, out int num)
    {
        num = -1;
        return element.ValueKind == JsonValueKind.Object
            && element.TryGetProperty("_placeholder", out var flag) && flag.ValueKind == JsonValueKind.True
            && element.TryGetProperty("num", out var n) && n.ValueKind == JsonValueKind.Number && n.TryGetInt32(out num) && num >= 0;
    }
}

internal sealed class ByteArrayConverter : JsonConverter<byte[]>
{
    public override byte[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => BinaryScope.ReadPlaceholder(ref reader).ToArray();

    public override void Write(Utf8JsonWriter writer, byte[] value, JsonSerializerOptions options) => BinaryScope.WritePlaceholder(writer, value);
}

internal sealed class ReadOnlyMemoryConverter : JsonConverter<ReadOnlyMemory<byte>>
{
    public override ReadOnlyMemory<byte> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => BinaryScope.ReadPlaceholder(ref reader);

    public override void Write(Utf8JsonWriter writer, ReadOnlyMemory<byte> value, JsonSerializerOptions options) => BinaryScope.WritePlaceholder(writer, value);
}

internal sealed class MemoryConverter : JsonConverter<Memory<byte>>
{
    public override Memory<byte> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => BinaryScope.ReadPlaceholder(ref reader).ToArray();

    public override void Write(Utf8JsonWriter writer, Memory<byte> value, JsonSerializerOptions options) => BinaryScope.WritePlaceholder(writer, value);
}

internal sealed class ArraySegmentConverter : JsonConverter<ArraySegment<byte>>
{
    public override ArraySegment<byte> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => BinaryScope.ReadPlaceholder(ref reader).ToArray();

    public override void Write(Utf8JsonWriter writer, ArraySegment<byte> value, JsonSerializerOptions options) => BinaryScope.WritePlaceholder(writer, value);
}
