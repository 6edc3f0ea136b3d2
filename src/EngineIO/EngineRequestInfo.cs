using System.Net;
using Microsoft.AspNetCore.Http;

namespace EngineIO;

/// <summary>What the handshake request of a session carried, kept after the request ends.</summary>
public sealed class EngineRequestInfo
{
    private readonly string[] _pairs; // the headers' names and values, then the query's
    private readonly int _queryStart;

    /// <summary>The request's headers (names distinct, case-insensitively) and query (names distinct).</summary>
    internal EngineRequestInfo(IReadOnlyCollection<KeyValuePair<string, string>> headers, IReadOnlyCollection<KeyValuePair<string, string>> query, IPAddress? remoteAddress, string url, bool secure)
    {
        (_pairs, _queryStart) = CompactStringMap.Flatten(headers, query);
        RemoteAddress = remoteAddress;
        Url = url;
        Secure = secure;
    }

    /// <summary>The handshake's headers, names case-insensitive (repeated fields joined with ",").</summary>
    public IReadOnlyDictionary<string, string> Headers => new CompactStringMap(_pairs, 0, _queryStart, StringComparison.OrdinalIgnoreCase);

    /// <summary>The handshake's query parameters.</summary>
    public IReadOnlyDictionary<string, string> Query => new CompactStringMap(_pairs, _queryStart, _pairs.Length, StringComparison.Ordinal);

    /// <summary>The client's address, when the transport knows it.</summary>
    public IPAddress? RemoteAddress { get; }

    /// <summary>The handshake request's path and query.</summary>
    public string Url { get; }

    /// <summary>Whether the handshake came over HTTPS.</summary>
    public bool Secure { get; }

    internal static EngineRequestInfo From(HttpContext context)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in context.Request.Headers)
        {
            headers[header.Key] = header.Value.ToString();
        }

        var query = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in context.Request.Query)
        {
            query[item.Key] = item.Value.ToString();
        }

        var url = context.Request.PathBase + context.Request.Path + context.Request.QueryString;
        return new EngineRequestInfo(headers, query, context.Connection.RemoteIpAddress, url, context.Request.IsHttps);
    }
}
