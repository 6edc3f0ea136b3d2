using System.Security.Cryptography;
using System.Text;
using Builder.Auth;
using Builder.Gateway;
using Builder.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Builder.Tests;

/// <summary>
/// Issue 16, defect 10a: with a shared secret and a public key both configured, Builder:Jwt:Algorithms
/// says which algorithms are accepted (default: those of the configured keys); other algorithms are
/// refused, and an algorithm without its key stops start-up.
/// </summary>
public sealed class JwtAlgorithmTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("builder-algs-").FullName;
    private readonly RSA _rsa = RSA.Create(2048);

    public void Dispose()
    {
        _rsa.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string RsaPem()
    {
        var pem = Path.Combine(_dir, "public.pem");
        File.WriteAllText(pem, _rsa.ExportSubjectPublicKeyInfoPem());
        return pem;
    }

    private static string Mint(SecurityKey key, string algorithm, TestGateway gateway) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Claims = new Dictionary<string, object> { ["sub"] = "carol", ["projects"] = new[] { "p1" } },
            IssuedAt = gateway.Time.GetUtcNow().UtcDateTime,
            NotBefore = gateway.Time.GetUtcNow().UtcDateTime,
            Expires = gateway.Time.GetUtcNow().UtcDateTime.AddHours(1),
            Issuer = TestGateway.Issuer,
            Audience = TestGateway.Audience,
            SigningCredentials = new SigningCredentials(key, algorithm),
        });

    private static async Task<TokenResult> ValidateAsync(TestGateway gateway, string token) =>
        await gateway.Services.GetRequiredService<TokenValidator>().ValidateAsync(token);

    [Fact]
    public async Task By_default_exactly_the_algorithms_of_the_configured_keys_are_accepted_and_alg_confusion_is_refused()
    {
        var pem = RsaPem();
        await using var gateway = await TestGateway.StartAsync(s => s["Builder:Jwt:PublicKeyFile"] = pem);
        Assert.Equal(["HS256", "RS256"], gateway.Services.GetRequiredService<TokenValidator>().Algorithms);

        Assert.True((await ValidateAsync(gateway, gateway.Token("alice", ["p1"]))).IsValid);
        Assert.True((await ValidateAsync(gateway, Mint(new RsaSecurityKey(_rsa), SecurityAlgorithms.RsaSha256, gateway))).IsValid);

        // HS256 "signed" with the public key's bytes as the HMAC secret
        var confused = Mint(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(_rsa.ExportSubjectPublicKeyInfoPem())), SecurityAlgorithms.HmacSha256, gateway);
        Assert.Equal(TokenErrors.Invalid, (await ValidateAsync(gateway, confused)).ErrorCode);
        var confusedDer = Mint(new SymmetricSecurityKey(_rsa.ExportSubjectPublicKeyInfo()), SecurityAlgorithms.HmacSha256, gateway);
        Assert.Equal(TokenErrors.Invalid, (await ValidateAsync(gateway, confusedDer)).ErrorCode);
        Assert.Equal("TOKEN_INVALID", (await RawPolling.ConnectErrorAsync(gateway, new { token = confused })).GetProperty("data").GetProperty("code").GetString());

        // ES256 has no key here
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        Assert.Equal(TokenErrors.Invalid, (await ValidateAsync(gateway, Mint(new ECDsaSecurityKey(ec), SecurityAlgorithms.EcdsaSha256, gateway))).ErrorCode);
    }

    [Fact]
    public async Task A_token_whose_algorithm_is_not_listed_is_refused_though_its_key_is_configured()
    {
        var pem = RsaPem();
        await using var gateway = await TestGateway.StartAsync(s =>
        {
            s["Builder:Jwt:PublicKeyFile"] = pem;
            s["Builder:Jwt:Algorithms"] = "RS256";
        });

        var hs256 = await ValidateAsync(gateway, gateway.Token("alice", ["p1"]));
        Assert.Equal(TokenErrors.Invalid, hs256.ErrorCode);
        Assert.Contains("HS256", hs256.ErrorMessage, StringComparison.Ordinal);
        var refused = await RawPolling.ConnectErrorAsync(gateway, new { token = gateway.Token("alice", ["p1"]) });
        Assert.Equal("TOKEN_INVALID", refused.GetProperty("data").GetProperty("code").GetString());

        Assert.True((await ValidateAsync(gateway, Mint(new RsaSecurityKey(_rsa), SecurityAlgorithms.RsaSha256, gateway))).IsValid);
    }

    [Theory]
    [InlineData("HS256", false, "Builder:Jwt:Secret")]
    [InlineData("RS256,ES256", true, "Builder:Jwt:PublicKeyFile")]
    [InlineData("HS256,none", true, "Builder:Jwt:Algorithms")]
    [InlineData("HS512", true, "Builder:Jwt:Algorithms")]
    public void An_algorithm_without_its_key_stops_start_up_naming_the_key(string algorithms, bool secret, string named)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Urls"] = "http://127.0.0.1:0",
            ["Builder:Jwt:Secret"] = secret ? TestGateway.Secret : null,
            ["Builder:Jwt:PublicKeyFile"] = RsaPem(),
            ["Builder:Jwt:Algorithms"] = algorithms,
            ["Builder:Store:Provider"] = "memory",
        };
        var ex = Assert.Throws<OptionsValidationException>(() => GatewayApp.Build([], b => b.Configuration.AddInMemoryCollection(settings)));
        Assert.Contains(ex.Failures, f => f.Contains(named, StringComparison.Ordinal) && f.Contains("Builder:Jwt:Algorithms", StringComparison.Ordinal));
    }
}
