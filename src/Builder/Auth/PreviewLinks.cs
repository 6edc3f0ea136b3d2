using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Builder.Auth;

/// <summary>The codes of a refused preview link, in the body of a 401.</summary>
public static class PreviewLinkErrors
{
    public const string Invalid = "PREVIEW_LINK_INVALID";
    public const string Expired = "PREVIEW_LINK_EXPIRED";
}

/// <summary>What checking a preview link found.</summary>
public enum PreviewLinkStatus
{
    Valid,
    Invalid,
    Expired,
}

/// <summary>
/// Signed, expiring links to <c>/preview/{projectId}</c>: <c>?expires=&lt;unix seconds&gt;&amp;sig=&lt;base64url
/// HMAC-SHA256(key, projectId + "\n" + expires)&gt;</c>. Whoever holds the link sees that project's
/// preview until it expires (<see cref="PreviewOptions.LinkSeconds"/>). The key is derived from
/// <c>Builder:Jwt:Secret</c> when one is configured (links survive restarts and are valid on every
/// instance sharing the secret), else it is random per process (links die with the process).
/// </summary>
public sealed class PreviewLinks
{
    private const string KeyLabel = "builder-preview-link-v1";

    private readonly byte[] _key;
    private readonly TimeSpan _lifetime;
    private readonly TimeProvider _time;

    public PreviewLinks(JwtOptions jwt, PreviewOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(jwt);
        ArgumentNullException.ThrowIfNull(options);
        KeyFromSecret = !string.IsNullOrEmpty(jwt.Secret);
        _key = !KeyFromSecret
            ? RandomNumberGenerator.GetBytes(32)
            : HMACSHA256.HashData(Encoding.UTF8.GetBytes(jwt.Secret!), Encoding.UTF8.GetBytes(KeyLabel));
        _lifetime = TimeSpan.FromSeconds(options.LinkSeconds);
        _time = time;
    }

    /// <summary>Whether the key was derived from the JWT secret (else random per process).</summary>
    public bool KeyFromSecret { get; }

    /// <summary>A link to <c>{baseUrl}/{projectId}</c> valid for the configured lifetime from now.</summary>
    public string Sign(string baseUrl, string projectId)
    {
        ArgumentNullException.ThrowIfNull(baseUrl);
        var expires = (_time.GetUtcNow() + _lifetime).ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        return $"{baseUrl.TrimEnd('/')}/{Uri.EscapeDataString(projectId)}?expires={expires}&sig={Signature(projectId, expires)}";
    }

    /// <summary>Checks the <c>expires</c> and <c>sig</c> of a link to <paramref name="projectId"/>.</summary>
    public PreviewLinkStatus Check(string projectId, string? expires, string? signature)
    {
        if (string.IsNullOrEmpty(expires) || string.IsNullOrEmpty(signature) || expires.Length > 20 || signature.Length > 100
            || !long.TryParse(expires, NumberStyles.None, CultureInfo.InvariantCulture, out var until))
        {
            return PreviewLinkStatus.Invalid;
        }

        var expected = Encoding.ASCII.GetBytes(Signature(projectId, expires));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.UTF8.GetBytes(signature)))
        {
            return PreviewLinkStatus.Invalid;
        }

        return _time.GetUtcNow().ToUnixTimeSeconds() < until ? PreviewLinkStatus.Valid : PreviewLinkStatus.Expired;
    }

    private string Signature(string projectId, string expires)
    {
        var mac = HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(projectId + "\n" + expires));
        return Convert.ToBase64String(mac).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }
}
