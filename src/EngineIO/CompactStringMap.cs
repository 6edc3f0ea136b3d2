using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace EngineIO;

/// <summary>
/// A read-only string map over a stretch of an array of alternating keys and values, searched
/// linearly: how a session's handshake headers and query are read. The session keeps only the
/// array (both maps in one, a third of two dictionaries' size for the handful of entries a
/// handshake has); a map is a view made when asked for.
/// </summary>
internal sealed class CompactStringMap : IReadOnlyDictionary<string, string>
{
    private readonly string[] _pairs;
    private readonly int _start;
    private readonly int _end;
    private readonly StringComparison _comparison;

    /// <summary>The map of the pairs in [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="pairs"/>, keys distinct under <paramref name="comparison"/>.</summary>
    public CompactStringMap(string[] pairs, int start, int end, StringComparison comparison)
    {
        _pairs = pairs;
        _start = start;
        _end = end;
        _comparison = comparison;
    }

    /// <summary>The pairs of <paramref name="first"/>, then those of <paramref name="second"/>, in one array; the second's start.</summary>
    public static (string[] Pairs, int SecondStart) Flatten(IReadOnlyCollection<KeyValuePair<string, string>> first, IReadOnlyCollection<KeyValuePair<string, string>> second)
    {
        var pairs = new string[(first.Count + second.Count) * 2];
        var i = 0;
        foreach (var (key, value) in first)
        {
            pairs[i++] = key;
            pairs[i++] = value;
        }

        var secondStart = i;
        foreach (var (key, value) in second)
        {
            pairs[i++] = key;
            pairs[i++] = value;
        }

        return (pairs, secondStart);
    }

    public int Count => (_end - _start) / 2;

    public string this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"'{key}' is not in the map.");

    public IEnumerable<string> Keys => this.Select(pair => pair.Key);

    public IEnumerable<string> Values => this.Select(pair => pair.Value);

    public bool ContainsKey(string key) => TryGetValue(key, out _);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        for (var i = _start; i < _end; i += 2)
        {
            if (string.Equals(_pairs[i], key, _comparison))
            {
                value = _pairs[i + 1];
                return true;
            }
        }

        value = null;
        return false;
    }

    public IEnumerator<KeyValuePair<string, string>> GetEnumerator()
    {
        for (var i = _start; i < _end; i += 2)
        {
            yield return new KeyValuePair<string, string>(_pairs[i], _pairs[i + 1]);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
