using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LoadGen;

/// <summary>HS256 user tokens for the gateway scenario: sub, name, projects ["*"].</summary>
internal static class Jwt
{
    private static readonly JsonWebTokenHandler s_handler = new();
    private static SigningCredentials? s_credentials;
    private static string? s_secret;

    public static string Mint(string secret, string sub, string name)
    {
        if (s_secret != secret)
        {
            s_credentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256);
            s_secret = secret;
        }

        var now = DateTime.UtcNow;
        return s_handler.CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object>
            {
                ["sub"] = sub,
                ["name"] = name,
                ["projects"] = new[] { "*" },
            },
            IssuedAt = now,
            NotBefore = now.AddMinutes(-1),
            Expires = now.AddHours(2),
            SigningCredentials = s_credentials,
        });
    }
}
