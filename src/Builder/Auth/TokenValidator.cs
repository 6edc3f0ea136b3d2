using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Builder.Auth;

/// <summary>Who a verified token speaks for.</summary>
public sealed record UserIdentity(string UserId, string Username, IReadOnlyList<string> Projects, string? Role, DateTimeOffset ExpiresAt)
{
    public bool MayAccess(string projectId) => Projects.Contains("*") || Projects.Contains(projectId);

    /// <summary>Producers (agents, services) carry role "agent" or "service".</summary>
    public bool IsProducer => Role is "agent" or "service";
}

/// <summary>The codes of a refused token, as <c>err.data.code</c> and in error events.</summary>
public static class TokenErrors
{
    public const string Missing = "TOKEN_MISSING";
    public const string Invalid = "TOKEN_INVALID";
    public const string Expired = "TOKEN_EXPIRED";
}

public sealed record TokenResult(UserIdentity? Identity, string? ErrorCode, string? ErrorMessage)
{
    public bool IsValid => Identity is not null;
}

/// <summary>
/// Verifies JWTs: HS256 with the configured secret, or RS256/ES256 with a PEM public key or a
/// JWKS file; signature, expiry, not-before, issuer and audience are all checked, and tokens
/// that are unsigned or use another algorithm are refused.
/// </summary>
public sealed class TokenValidator
{
    private readonly JsonWebTokenHandler _handler = new() { MapInboundClaims = false };
    private readonly TokenValidationParameters _parameters;
    private readonly TimeProvider _time;

    public TokenValidator(JwtOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _time = time;
        var keys = new List<SecurityKey>();
        var algorithms = new List<string>();
        if (!string.IsNullOrEmpty(options.Secret))
        {
            keys.Add(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(options.Secret)));
            algorithms.Add(SecurityAlgorithms.HmacSha256);
        }

        if (!string.IsNullOrEmpty(options.PublicKeyFile))
        {
            var pem = File.ReadAllText(options.PublicKeyFile);
            if (pem.Contains("BEGIN RSA PUBLIC KEY", StringComparison.Ordinal) || TryImportRsa(pem) is not null)
            {
                keys.Add(new RsaSecurityKey(TryImportRsa(pem)!));
                algorithms.Add(SecurityAlgorithms.RsaSha256);
            }
            else
            {
                var ec = ECDsa.Create();
                ec.ImportFromPem(pem);
                keys.Add(new ECDsaSecurityKey(ec));
                algorithms.Add(SecurityAlgorithms.EcdsaSha256);
            }
        }

        if (!string.IsNullOrEmpty(options.JwksFile))
        {
            var jwks = new JsonWebKeySet(File.ReadAllText(options.JwksFile));
            keys.AddRange(jwks.GetSigningKeys());
            algorithms.Add(SecurityAlgorithms.RsaSha256);
            algorithms.Add(SecurityAlgorithms.EcdsaSha256);
        }

        _parameters = new TokenValidationParameters
        {
            IssuerSigningKeys = keys,
            ValidAlgorithms = algorithms,
            ValidateIssuerSigningKey = true,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            ValidateLifetime = true,
            ClockSkew = TimeSpan.FromSeconds(options.ClockSkewSeconds),
            ValidateIssuer = !string.IsNullOrEmpty(options.Issuer),
            ValidIssuer = options.Issuer,
            ValidateAudience = !string.IsNullOrEmpty(options.Audience),
            ValidAudience = options.Audience,
            LifetimeValidator = ValidateLifetime,
        };
    }

    private static RSA? TryImportRsa(string pem)
    {
        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return rsa;
        }
        catch (ArgumentException)
        {
            return null;
        }
        catch (CryptographicException)
        {
            return null;
        }
    }

    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        if (expires is null || expires.Value.ToUniversalTime() + parameters.ClockSkew < now)
        {
            throw new SecurityTokenExpiredException("The token has expired.");
        }

        if (notBefore is not null && notBefore.Value.ToUniversalTime() - parameters.ClockSkew > now)
        {
            throw new SecurityTokenNotYetValidException("The token is not valid yet.");
        }

        return true;
    }

    public async Task<TokenResult> ValidateAsync(string? token)
    {
        if (string.IsNullOrWhiteSpace(token))
        {
            return new TokenResult(null, TokenErrors.Missing, "No token was given.");
        }

        if (token.Length > 16 * 1024)
        {
            return new TokenResult(null, TokenErrors.Invalid, "The token is too large.");
        }

        TokenValidationResult result;
        try
        {
            result = await _handler.ValidateTokenAsync(token, _parameters);
        }
        catch (ArgumentException ex)
        {
            return new TokenResult(null, TokenErrors.Invalid, ex.Message);
        }

        if (!result.IsValid)
        {
            return result.Exception is SecurityTokenExpiredException
                ? new TokenResult(null, TokenErrors.Expired, "The token has expired.")
                : new TokenResult(null, TokenErrors.Invalid, "The token is invalid: " + (result.Exception?.GetType().Name ?? "rejected"));
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        var sub = jwt.TryGetPayloadValue<string>("sub", out var s) ? s : null;
        if (string.IsNullOrEmpty(sub))
        {
            return new TokenResult(null, TokenErrors.Invalid, "The token has no sub claim.");
        }

        var name = jwt.TryGetPayloadValue<string>("name", out var n) && !string.IsNullOrEmpty(n)
            ? n
            : jwt.TryGetPayloadValue<string>("preferred_username", out var u) && !string.IsNullOrEmpty(u) ? u : sub;
        var role = jwt.TryGetPayloadValue<string>("role", out var r) ? r : null;
        // the token stays usable as long as validation accepts it: expiry plus the allowed skew
        var expiresAt = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero) + _parameters.ClockSkew;
        return new TokenResult(new UserIdentity(sub, name, ReadProjects(jwt), role, expiresAt), null, null);
    }

    private static List<string> ReadProjects(JsonWebToken jwt)
    {
        var projects = new List<string>();
        if (jwt.TryGetPayloadValue<JsonElement>("projects", out var element))
        {
            if (element.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in element.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.String)
                    {
                        projects.Add(item.GetString()!);
                    }
                }
            }
            else if (element.ValueKind == JsonValueKind.String)
            {
                projects.Add(element.GetString()!);
            }
        }
        else if (jwt.TryGetPayloadValue<string>("projects", out var single))
        {
            projects.Add(single);
        }

        return projects;
    }
}

/// <summary>Mints HS256 tokens (development endpoint, tests and the CLI).</summary>
public static class TokenIssuer
{
    public static string Issue(string secret, string userId, string username, IEnumerable<string> projects, TimeSpan lifetime, TimeProvider time, string? role = null, string? issuer = null, string? audience = null)
    {
        var now = time.GetUtcNow().UtcDateTime;
        var claims = new Dictionary<string, object>
        {
            ["sub"] = userId,
            ["name"] = username,
            ["projects"] = projects.ToArray(),
        };
        if (role is not null)
        {
            claims["role"] = role;
        }

        var descriptor = new SecurityTokenDescriptor
        {
            Claims = claims,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + lifetime,
            Issuer = issuer,
            Audience = audience,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret)), SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }
}
