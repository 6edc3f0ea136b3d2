using System.Security.Cryptography;
using System.Text;
using Builder.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Builder.Tests;

/// <summary>RS256 with a PEM public key file and ES256 with a JWKS file, instead of a shared secret.</summary>
public sealed class KeyAuthTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("builder-keys-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Mint(SecurityKey key, string algorithm, TestGateway gateway, string? issuer = TestGateway.Issuer) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object> { ["sub"] = "carol", ["preferred_username"] = "carol_k", ["projects"] = new[] { "p1" } },
            IssuedAt = gateway.Time.GetUtcNow().UtcDateTime,
            NotBefore = gateway.Time.GetUtcNow().UtcDateTime,
            Expires = gateway.Time.GetUtcNow().UtcDateTime.AddHours(1),
            Issuer = issuer,
            Audience = TestGateway.Audience,
            SigningCredentials = new SigningCredentials(key, algorithm),
        });

    [Fact]
    public async Task Rs256_tokens_are_verified_with_the_public_key_file()
    {
        using var rsa = RSA.Create(2048);
        var pem = Path.Combine(_dir, "public.pem");
        await File.WriteAllTextAsync(pem, rsa.ExportSubjectPublicKeyInfoPem());
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Jwt:Secret"] = null;
            s["Builder:Jwt:PublicKeyFile"] = pem;
        });

        var good = Mint(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256, gateway);
        Assert.StartsWith("40/builder,", await RawPolling.ConnectAsync(gateway, new { token = good }), StringComparison.Ordinal);
        await using (var client = gateway.Client(good))
        {
            var authenticated = await client.ConnectAsync();
            Assert.Equal("carol", authenticated.GetProperty("userId").GetString());
            Assert.Equal("carol_k", authenticated.GetProperty("username").GetString());
        }

        // signed by another key
        using var other = RSA.Create(2048);
        var forged = Mint(new RsaSecurityKey(other), SecurityAlgorithms.RsaSha256, gateway);
        Assert.Equal("TOKEN_INVALID", (await RawPolling.ConnectErrorAsync(gateway, new { token = forged })).GetProperty("data").GetProperty("code").GetString());

        // algorithm confusion: HS256 "signed" with the public key's text as the secret
        var confused = Mint(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(rsa.ExportSubjectPublicKeyInfoPem())), SecurityAlgorithms.HmacSha256, gateway);
        Assert.Equal("TOKEN_INVALID", (await RawPolling.ConnectErrorAsync(gateway, new { token = confused })).GetProperty("data").GetProperty("code").GetString());

        // right key, wrong issuer
        var wrongIssuer = Mint(new RsaSecurityKey(rsa), SecurityAlgorithms.RsaSha256, gateway, issuer: "someone-else");
        Assert.Equal("TOKEN_INVALID", (await RawPolling.ConnectErrorAsync(gateway, new { token = wrongIssuer })).GetProperty("data").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Es256_tokens_are_verified_with_the_jwks_file()
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var signing = new ECDsaSecurityKey(ec) { KeyId = "key-1" };
        var jwk = JsonWebKeyConverter.ConvertFromECDsaSecurityKey(new ECDsaSecurityKey(ECDsa.Create(ec.ExportParameters(false))) { KeyId = "key-1" });
        var jwks = Path.Combine(_dir, "jwks.json");
        await File.WriteAllTextAsync(jwks, $$"""{"keys":[{"kty":"EC","crv":"{{jwk.Crv}}","x":"{{jwk.X}}","y":"{{jwk.Y}}","kid":"key-1","use":"sig","alg":"ES256"}]}""");
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Jwt:Secret"] = null;
            s["Builder:Jwt:JwksFile"] = jwks;
        });

        var good = Mint(signing, SecurityAlgorithms.EcdsaSha256, gateway);
        Assert.StartsWith("40/builder,", await RawPolling.ConnectAsync(gateway, new { token = good }), StringComparison.Ordinal);

        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var forged = Mint(new ECDsaSecurityKey(other) { KeyId = "key-1" }, SecurityAlgorithms.EcdsaSha256, gateway);
        Assert.Equal("TOKEN_INVALID", (await RawPolling.ConnectErrorAsync(gateway, new { token = forged })).GetProperty("data").GetProperty("code").GetString());
    }
}
