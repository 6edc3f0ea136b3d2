using System.Globalization;
using System.Text.Json;

namespace Builder.Cli;

/// <summary>Prints received events: one JSON object per line (<c>--json</c>) or a readable line.</summary>
public sealed class EventPrinter(TextWriter output, bool json, TimeProvider time)
{
    private static readonly JsonSerializerOptions s_compact = new() { WriteIndented = false };

    public void Print(ReceivedEvent e)
    {
        if (json)
        {
            var line = new Dictionary<string, object?> { ["event"] = e.Name, ["data"] = e.Data };
            if (e.Args.Count > 1)
            {
                line["args"] = e.Args;
            }

            output.WriteLine(JsonSerializer.Serialize(line, s_compact));
        }
        else
        {
            var stamp = time.GetLocalNow().ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture);
            var args = string.Join(" ", e.Args.Select(a => JsonSerializer.Serialize(a, s_compact)));
            output.WriteLine($"{stamp} {e.Name} {args}");
        }

        output.Flush();
    }

    /// <summary>Prints the ack of an emitted event (as an <c>ack</c> line).</summary>
    public void PrintAck(string eventName, JsonElement? ack)
    {
        if (ack is null)
        {
            return;
        }

        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["ack"] = eventName, ["data"] = ack }, s_compact));
        }
        else
        {
            output.WriteLine($"ack {eventName} {JsonSerializer.Serialize(ack, s_compact)}");
        }

        output.Flush();
    }

    /// <summary>The error of an ack <c>{ok: false, error: {code, message}}</c>, or null when it is no such ack.</summary>
    public static (string Code, string Message)? AckError(JsonElement? ack)
    {
        if (ack is { ValueKind: JsonValueKind.Object } a
            && a.TryGetProperty("ok", out var ok) && ok.ValueKind == JsonValueKind.False
            && a.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.Object)
        {
            var code = error.TryGetProperty("code", out var c) ? c.GetString() ?? "ERROR" : "ERROR";
            var message = error.TryGetProperty("message", out var m) ? m.GetString() ?? string.Empty : string.Empty;
            return (code, message);
        }

        return null;
    }
}
