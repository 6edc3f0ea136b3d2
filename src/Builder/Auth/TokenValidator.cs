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
/// that are unsigned or use an algorithm not accepted (<see cref="JwtOptions.Algorithms"/>,
/// by default those of the configured keys) are refused. Each key verifies only its own
/// algorithm, so an HS256 token "signed" with the public key's bytes meets no key.
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
        var keys = LoadKeys(options);
        Algorithms = options.AlgorithmList() is { Count: > 0 } listed
            ? listed
            : s_known.Where(a => keys.Any(k => k.Algorithm == a)).ToList();

        // a key serves only its own algorithm, and only when that algorithm is accepted
        _parameters = new TokenValidationParameters
        {
            IssuerSigningKeys = keys.Where(k => Algorithms.Contains(k.Algorithm)).Select(k => k.Key).ToList(),
            ValidAlgorithms = Algorithms.Select(a => s_securityAlgorithms[a]).ToList(),
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

    private static readonly string[] s_known = ["HS256", "RS256", "ES256"];

    private static readonly Dictionary<string, string> s_securityAlgorithms = new(StringComparer.Ordinal)
    {
        ["HS256"] = SecurityAlgorithms.HmacSha256,
        ["RS256"] = SecurityAlgorithms.RsaSha256,
        ["ES256"] = SecurityAlgorithms.EcdsaSha256,
    };

    /// <summary>The algorithms this gateway can verify, by their JOSE names: HS256, RS256, ES256.</summary>
    public static IReadOnlyList<string> KnownAlgorithms => s_known;

    /// <summary>The algorithms accepted (Builder:Jwt:Algorithms, else those of the configured keys).</summary>
    public IReadOnlyList<string> Algorithms { get; }

    /// <summary>
    /// The configured verification keys, each with the one algorithm it serves: the secret HS256, a
    /// PEM or JWKS RSA key RS256, an EC key ES256. Throws when a key file cannot be read.
    /// </summary>
    public static IReadOnlyList<(string Algorithm, SecurityKey Key)> LoadKeys(JwtOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var keys = new List<(string, SecurityKey)>();
        if (!string.IsNullOrEmpty(options.Secret))
        {
            keys.Add(("HS256", new SymmetricSecurityKey(Encoding.UTF8.GetBytes(options.Secret))));
        }

        if (!string.IsNullOrEmpty(options.PublicKeyFile))
        {
            var pem = File.ReadAllText(options.PublicKeyFile);
            if (TryImportRsa(pem) is { } rsa)
            {
                keys.Add(("RS256", new RsaSecurityKey(rsa)));
            }
            else
            {
                var ec = ECDsa.Create();
                ec.ImportFromPem(pem);
                keys.Add(("ES256", new ECDsaSecurityKey(ec)));
            }
        }

        if (!string.IsNullOrEmpty(options.JwksFile))
        {
            var jwks = new JsonWebKeySet(File.ReadAllText(options.JwksFile));
            foreach (var key in jwks.GetSigningKeys())
            {
                var algorithm = key switch
                {
                    RsaSecurityKey or JsonWebKey { Kty: "RSA" } => "RS256",
                    ECDsaSecurityKey or JsonWebKey { Kty: "EC" } => "ES256",
                    _ => null,
                };
                if (algorithm is not null)
                {
                    keys.Add((algorithm, key));
                }
            }
        }

        return keys;
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
            // the header's algorithm first: a token of an algorithm not accepted meets no key at all
            var alg = _handler.ReadJsonWebToken(token).Alg;
            if (!Algorithms.Contains(alg))
            {
                return new TokenResult(null, TokenErrors.Invalid, $"The token's algorithm \"{alg}\" is not accepted (accepted: {string.Join(", ", Algorithms)}).");
            }

            result = await _handler.ValidateTokenAsync(token, _parameters);
        }
        catch (ArgumentException ex)
        {
            return new TokenResult(null, TokenErrors.Invalid, ex.Message);
        }
        catch (SecurityTokenException ex)
        {
            return new TokenResult(null, TokenErrors.Invalid, "The token is invalid: " + ex.GetType().Name);
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
