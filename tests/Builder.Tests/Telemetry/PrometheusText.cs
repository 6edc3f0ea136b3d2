using System.Globalization;

namespace Builder.Tests.Telemetry;

/// <summary>Prometheus text exposition (what /metrics answers) read as series → value.</summary>
internal static class PrometheusText
{
    /// <summary>
    /// Each sample line as <c>name</c> or <c>name{label="value",...}</c> (labels in the exporter's
    /// order, without its <c>otel_scope_*</c> labels) → value.
    /// </summary>
    public static Dictionary<string, double> Parse(string text)
    {
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var space = line.LastIndexOf(' ');
            Assert.True(space > 0, $"a sample line without a value: {line}");
            var value = double.Parse(line.AsSpan(space + 1), NumberStyles.Float, CultureInfo.InvariantCulture);
            values[Series(line[..space])] = value;
        }

        return values;
    }

    private static string Series(string series)
    {
        var open = series.IndexOf('{', StringComparison.Ordinal);
        if (open < 0)
        {
            return series;
        }

        var labels = new List<string>();
        var rest = series.AsSpan(open + 1, series.Length - open - 2);
        while (!rest.IsEmpty)
        {
            // name="value" with \" and \\ escapes in the value
            var eq = rest.IndexOf('=');
            var i = eq + 2;
            while (rest[i] != '"')
            {
                i += rest[i] == '\\' ? 2 : 1;
            }

            var label = rest[..(i + 1)].ToString();
            if (!label.StartsWith("otel_scope_", StringComparison.Ordinal))
            {
                labels.Add(label);
            }

            rest = i + 1 < rest.Length ? rest[(i + 2)..] : [];
        }

        return labels.Count == 0 ? series[..open] : $"{series[..open]}{{{string.Join(',', labels)}}}";
    }
}
