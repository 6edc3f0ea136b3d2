using System.Security.Cryptography;
using System.Text;
using Builder.Auth;

namespace Builder.Gateway;

/// <summary>The result of checking a producer's credential for a project.</summary>
public sealed record ProducerCheck(int Status, string? Code, string? Message)
{
    public static readonly ProducerCheck Ok = new(200, null, null);

    public bool Allowed => Status == 200;
}

/// <summary>
/// Producers authenticate with <c>Authorization: Bearer &lt;JWT&gt;</c> whose <c>role</c> is
/// <c>agent</c> or <c>service</c> (and whose <c>projects</c> claim covers the project), or with
/// <c>X-Api-Key</c> set to one of <c>Builder:Ingest:ApiKeys</c>.
/// </summary>
public sealed class ProducerAuth(TokenValidator tokens, BuilderOptions options)
{
    private readonly byte[][] _keys = options.Ingest.ApiKeys.Select(Encoding.UTF8.GetBytes).ToArray();

    public async Task<ProducerCheck> CheckAsync(HttpRequest request, string? projectId)
    {
        ArgumentNullException.ThrowIfNull(request);
        var apiKey = request.Headers["X-Api-Key"].ToString();
        if (apiKey.Length > 0)
        {
            var given = Encoding.UTF8.GetBytes(apiKey);
            return _keys.Any(k => CryptographicOperations.FixedTimeEquals(k, given))
                ? ProducerCheck.Ok
                : new ProducerCheck(401, "INVALID_API_KEY", "The API key is not valid.");
        }

        var authorization = request.Headers.Authorization.ToString();
        if (!authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return new ProducerCheck(401, TokenErrors.Missing, "A service credential is required: Authorization: Bearer <token> (role agent or service) or X-Api-Key.");
        }

        var result = await tokens.ValidateAsync(authorization["Bearer ".Length..].Trim());
        if (!result.IsValid)
        {
            return new ProducerCheck(401, result.ErrorCode, result.ErrorMessage);
        }

        if (!result.Identity!.IsProducer)
        {
            return new ProducerCheck(403, "NOT_A_PRODUCER", "The token's role must be \"agent\" or \"service\" to publish.");
        }

        if (projectId is not null && !result.Identity.MayAccess(projectId))
        {
            return new ProducerCheck(403, "FORBIDDEN", $"The token does not cover project \"{projectId}\".");
        }

        return ProducerCheck.Ok;
    }
}
