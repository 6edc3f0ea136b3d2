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

    public IReadOnlyDictionary<string, string> Headers => _request.Headers;

    public IReadOnlyDictionary<string, string> Query => _request.Query;

    public IPAddress? Address => _request.RemoteAddress;

    public string Url => _request.Url;

    public bool Secure => _request.Secure;

    public DateTimeOffset Time { get; }

    /// <summary>A string member of the auth payload, or null.</summary>
    public string? AuthString(string name) =>
        Auth.ValueKind == JsonValueKind.Object && Auth.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}
