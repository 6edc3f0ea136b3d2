using System.Text;
using System.Text.Json;

namespace Builder.Cli;

/// <summary>Parses JSON given on the command line, naming the argument and the place of a mistake.</summary>
public static class JsonArgument
{
    /// <summary>Parses <paramref name="text"/>; a mistake throws a <see cref="CliException"/> (exit 2) naming <paramref name="what"/>, the position and the text around it.</summary>
    public static JsonElement Parse(string what, string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            var position = ex.BytePositionInLine is { } p ? (int)p : 0;
            var line = ex.LineNumber is { } l ? (int)l : 0;
            var lineText = text.Split('\n') is { } lines && line < lines.Length ? lines[line] : text;
            // the byte position of System.Text.Json counts UTF-8 bytes: turned into a character column
            var column = CharColumn(lineText, position);
            var reason = ex.Message.Split(" LineNumber:", 2)[0].TrimEnd('.', ' ');
            var caret = new StringBuilder()
                .Append("    ").Append(lineText).Append('\n')
                .Append("    ").Append(' ', column).Append('^');
            throw new CliException(
                ExitCodes.BadArgument,
                $"{what} is not valid JSON (line {line + 1}, column {column + 1}): {reason}\n{caret}");
        }
    }

    private static int CharColumn(string line, int bytePosition)
    {
        var bytes = 0;
        for (var i = 0; i < line.Length; i++)
        {
            if (bytes >= bytePosition)
            {
                return i;
            }

            bytes += Encoding.UTF8.GetByteCount(line.AsSpan(i, char.IsHighSurrogate(line[i]) && i + 1 < line.Length ? 2 : 1));
            if (char.IsHighSurrogate(line[i]))
            {
                i++;
            }
        }

        return line.Length;
    }
}
