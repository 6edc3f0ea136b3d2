using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace EngineIO;

/// <summary>
/// A read-only string map in one array of alternating keys and values, searched linearly: what a
/// session keeps of its handshake's headers and query for as long as it lives. Half the size of a
/// dictionary for the handful of entries a handshake has.
/// </summary>
internal sealed class CompactStringMap : IReadOnlyDictionary<string, string>
{
    private readonly string[] _pairs;
    private readonly StringComparison _comparison;

    private CompactStringMap(string[] pairs, StringComparison comparison)
    {
        _pairs = pairs;
        _comparison = comparison;
    }

    /// <summary>A copy of <paramref name="source"/> (whose keys are distinct under <paramref name="comparison"/>).</summary>
    public static CompactStringMap From(IReadOnlyCollection<KeyValuePair<string, string>> source, StringComparison comparison)
    {
        var pairs = new string[source.Count * 2];
        var i = 0;
        foreach (var (key, value) in source)
        {
            pairs[i++] = key;
            pairs[i++] = value;
        }

        return new CompactStringMap(pairs, comparison);
    }

    public int Count => _pairs.Length / 2;

    public string this[string key] => TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"'{key}' is not in the map.");

    public IEnumerable<string> Keys => this.Select(pair => pair.Key);

    public IEnumerable<string> Values => this.Select(pair => pair.Value);

    public bool ContainsKey(string key) => TryGetValue(key, out _);

    public bool TryGetValue(string key, [MaybeNullWhen(false)] out string value)
    {
        ArgumentNullException.ThrowIfNull(key);
        for (var i = 0; i < _pairs.Length; i += 2)
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
        for (var i = 0; i < _pairs.Length; i += 2)
        {
            yield return new KeyValuePair<string, string>(_pairs[i], _pairs[i + 1]);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
