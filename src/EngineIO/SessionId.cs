using System.Buffers.Text;
using System.Security.Cryptography;

namespace EngineIO;

/// <summary>Random 20-character URL-safe identifiers (120 bits), like the reference base64id.</summary>
public static class SessionId
{
    /// <summary>A new random identifier.</summary>
    public static string New()
    {
        Span<byte> bytes = stackalloc byte[15];
        RandomNumberGenerator.Fill(bytes);
        return Base64Url.EncodeToString(bytes);
    }
}
