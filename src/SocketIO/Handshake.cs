using System.Net;
using System.Text.Json;
using EngineIO;

namespace SocketIO;

/// <summary>What the client sent when it connected to the namespace.</summary>
public sealed class Handshake
{
    internal Handshake(EngineRequestInfo request, JsonElement auth, DateTimeOffset time)
    {
        Headers = request.Headers;
        Query = request.Query;
        Address = request.RemoteAddress;
        Url = request.Url;
        Secure = request.Secure;
        Auth = auth;
        Time = time;
    }

    /// <summary>The CONNECT payload (<c>auth</c> option of the client); an empty object when none.</summary>
    public JsonElement Auth { get; }

    public IReadOnlyDictionary<string, string> Headers { get; }

    public IReadOnlyDictionary<string, string> Query { get; }

    public IPAddress? Address { get; }

    public string Url { get; }

    public bool Secure { get; }

    public DateTimeOffset Time { get; }

    /// <summary>A string member of the auth payload, or null.</summary>
    public string? AuthString(string name) =>
        Auth.ValueKind == JsonValueKind.Object && Auth.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;
}
