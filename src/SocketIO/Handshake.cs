using System.Net;
using System.Text.Json;
using EngineIO;

namespace SocketIO;

/// <summary>What the client sent when it connected to the namespace.</summary>
public sealed class Handshake
{
    private readonly EngineRequestInfo _request;

    internal Handshake(EngineRequestInfo request, JsonElement auth, DateTimeOffset time)
    {
        _request = request;
        Auth = auth;
        Time = time;
    }

    /// <summary>The CONNECT payload (<c>auth</c> option of the client); an empty object when none.</summary>
    public JsonElement Auth { get; }

    /// <summary>The handshake request's headers.</summary>
    public IReadOnlyDictionary<string, string> Headers => _request.Headers;

    /// <summary>The handshake request's query parameters.</summary>
    public IReadOnlyDictionary<string, string> Query => _request.Query;

    /// <summary>The client's address.</summary>
    public IPAddress? Address => _request.RemoteAddress;

    /// <summary>The handshake request's path and query.</summary>
    public string Url => _request.Url;

    /// <summary>Whether the handshake came over HTTPS.</summary>
    public bool Secure => _request.Secure;

    /// <summary>When the client joined the namespace.</summary>
    public DateTimeOffset Time { get; }

    /// <summary>A string member of the auth payload, or null.</summary>
    public string? AuthString(string name) =>
        Auth.ValueKind == JsonValueKind.Object && Auth.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}
