using System.Text;
using System.Text.Json;
using Builder.Auth;
using Microsoft.Extensions.Time.Testing;

namespace Builder.Tests.Infrastructure;

/// <summary>Tokens the gateway must refuse, crafted by hand or signed with the wrong parameters.</summary>
public static class Tokens
{
    public static string Unsigned(TestGateway gateway, string userId = "mallory")
    {
        var now = gateway.Time.GetUtcNow().ToUnixTimeSeconds();
        var header = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new { alg = "none", typ = "JWT" }));
        var payload = Base64Url(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["sub"] = userId,
            ["name"] = userId,
            ["projects"] = new[] { "*" },
            ["iss"] = TestGateway.Issuer,
            ["aud"] = TestGateway.Audience,
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 3600,
        }));
        return header + "." + payload + ".";
    }

    public static string WrongSignature(TestGateway gateway) =>
        TokenIssuer.Issue("another-secret-that-is-long-enough-0123456789", "mallory", "mallory", ["*"], TimeSpan.FromHours(1), gateway.Time, null, TestGateway.Issuer, TestGateway.Audience);

    /// <summary>A correctly signed token whose payload was altered (projects widened to "*").</summary>
    public static string TamperedPayload(TestGateway gateway)
    {
        var good = gateway.Token("alice", ["p1"]);
        var parts = good.Split('.');
        var payload = JsonDocument.Parse(FromBase64Url(parts[1])).RootElement;
        var forged = new Dictionary<string, object?>();
        foreach (var property in payload.EnumerateObject())
        {
            forged[property.Name] = property.Value;
        }

        forged["projects"] = new[] { "*" };
        return parts[0] + "." + Base64Url(JsonSerializer.SerializeToUtf8Bytes(forged)) + "." + parts[2];
    }

    public static string WrongIssuer(TestGateway gateway) =>
        TokenIssuer.Issue(TestGateway.Secret, "alice", "alice", ["*"], TimeSpan.FromHours(1), gateway.Time, null, "other-issuer", TestGateway.Audience);

    public static string WrongAudience(TestGateway gateway) =>
        TokenIssuer.Issue(TestGateway.Secret, "alice", "alice", ["*"], TimeSpan.FromHours(1), gateway.Time, null, TestGateway.Issuer, "other-aud");

    /// <summary>Issued two hours ago for one hour: expired well beyond the clock skew.</summary>
    public static string Expired(TestGateway gateway)
    {
        var past = new FakeTimeProvider(gateway.Time.GetUtcNow().AddHours(-2));
        return TokenIssuer.Issue(TestGateway.Secret, "alice", "alice", ["*"], TimeSpan.FromHours(1), past, null, TestGateway.Issuer, TestGateway.Audience);
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static string FromBase64Url(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        s += new string('=', (4 - (s.Length % 4)) % 4);
        return Encoding.UTF8.GetString(Convert.FromBase64String(s));
    }
}
