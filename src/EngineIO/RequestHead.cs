using System.Buffers;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;

namespace EngineIO;

/// <summary>An HTTP/1.1 request head, parsed strictly; anything unusual is left to Kestrel.</summary>
internal sealed class RequestHead
{
    private readonly List<KeyValuePair<string, string>> _fields;

    private RequestHead(string method, string target, string path, string queryString, string version, Dictionary<string, string> headers, Dictionary<string, string> query, List<KeyValuePair<string, string>> fields)
    {
        _fields = fields;
        Method = method;
        Target = target;
        Path = path;
        QueryString = queryString;
        Version = version;
        Headers = headers;
        Query = query;
    }

    public string Method { get; }

    public string Target { get; }

    public string Path { get; }

    public string QueryString { get; }

    public string Version { get; }

    public Dictionary<string, string> Headers { get; }

    public Dictionary<string, string> Query { get; }

    public static bool TryParse(ReadOnlySequence<byte> buffer, KestrelServerLimits limits, out RequestHead head, out SequencePosition end)
    {
        head = null!;
        end = buffer.Start;
        var max = Math.Min(MaxBytes, limits.MaxRequestLineSize + limits.MaxRequestHeadersTotalSize);
        var reader = new SequenceReader<byte>(buffer.Length > max ? buffer.Slice(0, max) : buffer);
        if (!reader.TryReadTo(out ReadOnlySequence<byte> bytes, "\r\n\r\n"u8, advancePastDelimiter: true))
        {
            return false;
        }

        end = reader.Position;
        var span = bytes.IsSingleSegment ? bytes.FirstSpan : bytes.ToArray();
        foreach (var b in span)
        {
            // visible ASCII, space, tab and CRLF only
            if (b >= 0x7F || (b < 0x20 && b is not ((byte)'\r' or (byte)'\n' or (byte)'\t')))
            {
                return false;
            }
        }

        var lines = Encoding.ASCII.GetString(span).Split("\r\n");
        if (lines.Length - 1 > limits.MaxRequestHeaderCount || lines[0].Length + 2 > limits.MaxRequestLineSize)
        {
            return false;
        }

        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || requestLine[1].Length == 0 || requestLine[1][0] != '/')
        {
            return false;
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var fields = new List<KeyValuePair<string, string>>(lines.Length - 1);
        for (var i = 1; i < lines.Length; i++)
        {
            var line = lines[i];
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            // a bare CR or LF, no name, whitespace in or before the name (folding included): Kestrel's
            if (line.AsSpan().IndexOfAny('\r', '\n') >= 0 || colon <= 0 || line.AsSpan(0, colon).IndexOfAny(' ', '\t') >= 0)
            {
                return false;
            }

            var name = Shared(line.AsSpan(0, colon));
            var valueText = line.AsSpan(colon + 1).Trim(" \t");
            var value = name.Equals("Sec-WebSocket-Key", StringComparison.OrdinalIgnoreCase) ? valueText.ToString() : Shared(valueText);
            fields.Add(new(name, value));
            // repeated fields read as Kestrel gives them: the non-empty values joined with "," (an
            // empty repeat adds nothing, an empty first is replaced; found by the differential fuzz test)
            headers[name] = headers.TryGetValue(name, out var earlier) ? JoinRepeated(earlier, value) : value;
        }

        if (fields.Count(f => f.Key.Equals("Host", StringComparison.OrdinalIgnoreCase)) != 1
            || !IsValidHost(headers["Host"])
            || headers.ContainsKey("Content-Length") || headers.ContainsKey("Transfer-Encoding"))
        {
            return false;
        }

        var target = Shared(requestLine[1]);
        var q = target.IndexOf('?', StringComparison.Ordinal);
        var path = q < 0 ? target : target[..q];
        var queryString = q < 0 ? "" : target[q..];
        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in QueryHelpers.ParseQuery(queryString))
        {
            query[Shared(pair.Key)] = Shared(pair.Value.ToString());
        }

        head = new RequestHead(Shared(requestLine[0]), target, path, queryString, Shared(requestLine[2]), headers, query, fields);
        return true;
    }

    // The strings many connections send alike (method, version, header names, the Host, the URL,
    // Upgrade, a browser's User-Agent or Origin, EIO=4), stored once instead of copied per
    // connection, since a session keeps its request's headers and query for its whole life: a small
    // lossy table of recent strings; text equal to the one in its slot is that string (a race or a
    // collision only costs a copy). Unique values (the WebSocket key) are not put in it.
    private static readonly string?[] s_shared = new string?[512];

    private static string Shared(ReadOnlySpan<char> text)
    {
        var slot = (int)((uint)string.GetHashCode(text, StringComparison.Ordinal) % (uint)s_shared.Length);
        var seen = Volatile.Read(ref s_shared[slot]);
        if (seen is not null && text.SequenceEqual(seen))
        {
            return seen;
        }

        var copy = text.ToString();
        Volatile.Write(ref s_shared[slot], copy);
        return copy;
    }

    /// <summary>
    /// A registered name or IPv4 address (letters, digits, <c>-._~</c>) or a bracketed IPv6 literal
    /// (hex digits, <c>:</c> and <c>.</c>), then at most one <c>:port</c> of one or more digits: a
    /// subset of what Kestrel accepts (found by the differential test: <c>a:b</c>, <c>h:</c>,
    /// <c>[::1</c> were taken here and refused by Kestrel). Anything else is Kestrel's to judge.
    /// </summary>
    internal static bool IsValidHost(ReadOnlySpan<char> host)
    {
        int end;
        if (host.Length > 0 && host[0] == '[')
        {
            end = host.IndexOf(']');
            if (end < 2)
            {
                return false;
            }

            foreach (var c in host[1..end])
            {
                if (!(char.IsAsciiHexDigit(c) || c is ':' or '.'))
                {
                    return false;
                }
            }

            end++;
        }
        else
        {
            end = 0;
            while (end < host.Length && (char.IsAsciiLetterOrDigit(host[end]) || host[end] is '-' or '.' or '_' or '~'))
            {
                end++;
            }

            if (end == 0)
            {
                return false;
            }
        }

        if (end == host.Length)
        {
            return true;
        }

        var port = host[(end + 1)..];
        return host[end] == ':' && port.Length > 0 && !port.ContainsAnyExceptInRange('0', '9');
    }

    private const int MaxBytes = 16 * 1024;

    private static string JoinRepeated(string earlier, string value) =>
        earlier.Length == 0 ? value : value.Length == 0 ? earlier : earlier + "," + value;

    /// <summary>A request-only context for <see cref="EngineIOOptions.AllowRequest"/>.</summary>
    public HttpContext ToHttpContext(ConnectionContext connection)
    {
        var headers = new HeaderDictionary();
        foreach (var (name, value) in _fields)
        {
            // repeated fields keep their separate non-empty values, as Kestrel gives them
            var earlier = headers[name];
            headers[name] = earlier.Count == 0 || (earlier.Count == 1 && string.IsNullOrEmpty(earlier[0])) ? new StringValues(value)
                : value.Length == 0 ? earlier
                : StringValues.Concat(earlier, value);
        }

        var features = new FeatureCollection();
        features.Set<IHttpRequestFeature>(new HttpRequestFeature
        {
            Protocol = Version,
            Method = Method,
            Scheme = "http",
            Path = Path,
            QueryString = QueryString,
            RawTarget = Target,
            Headers = headers,
        });
        features.Set<IHttpResponseFeature>(new HttpResponseFeature());
        features.Set<IHttpConnectionFeature>(new HttpConnectionFeature
        {
            ConnectionId = connection.ConnectionId,
            RemoteIpAddress = (connection.RemoteEndPoint as IPEndPoint)?.Address,
            RemotePort = (connection.RemoteEndPoint as IPEndPoint)?.Port ?? 0,
            LocalIpAddress = (connection.LocalEndPoint as IPEndPoint)?.Address,
            LocalPort = (connection.LocalEndPoint as IPEndPoint)?.Port ?? 0,
        });
        return new DefaultHttpContext(features);
    }
}
